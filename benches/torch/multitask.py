"""The multi-task part of model.py's rebuild (METHODS.md §3; src/graph/mixer.rs and
src/graph/towers.rs): per-task gates over the experts, each task's mixture, and a tower and head
per task, batched over the towers as wgrec stores them.

From the projection's output h [E, B, W] (every table's expert, BatchNorm/ReLU applied, in slot
order: `slots[m]` of model.json is table m's slot), for each tower u (= task u):
- the sets it reads and how: model.json's `routes` (tower, set, mode); expert e is *present* for u
  when its table's set is read, *stopped* when that route is `stop_gradient`;
- gated architectures (`gated`): a_u = concat_e(h_e) · gate.weight[u]ᵀ + gate.bias[u] (the concat
  over ALL experts in slot order, [B, E·W]), g_u = softmax over the present experts (the others
  get exactly 0), c_u = Σ_e g_{u,e} h_e; `shared`: c_u = the mean of the present experts;
- stop-gradient ("All Forward, Task-specific Backward"): tower u reads h_e.detach() for every
  stopped expert, in the mixture and in the gate's input alike, so its loss reaches neither the
  expert nor its tables while its gate weights on the expert still learn; an expert outside the
  tower's sets (PLE: the other tasks') is read detached too, since it enters only the gate's
  input (wgrec's route flags: the gate input's gradient reaches h only where the route trains);
- then tower.{l} (x·Wᵀ + b, ReLU, dropout) and tower.head → one logit per task, [B, U].
`stop_gradient=False` ignores the stop-gradient routes (every read route trains): the control
that shows a trajectory can tell the two apart.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class TaskTowers(nn.Module):
    """Gates, mixtures, towers and heads of a multi-task model.json; tensors through `take(name,
    shape)` (model.py's loader: checks the shape, records the name)."""

    def __init__(self, desc, take, n_experts, stop_gradient=True):
        super().__init__()
        u, e, w = int(desc["towers"]), n_experts, int(desc["expert_width"])
        self.gated = bool(desc["gated"])
        present = torch.zeros(u, e, dtype=torch.bool)
        stopped = torch.zeros(u, e, dtype=torch.bool)
        slots = desc["slots"]
        for r in desc["routes"]:
            for m in desc["sets"][r["set"]]["tables"]:
                present[r["tower"], slots[m]] = True
                stopped[r["tower"], slots[m]] = r["mode"] == "stop_gradient"
        if not present.any(1).all():
            raise ValueError("model.json: a tower reads no expert")
        self.register_buffer("present", present)
        self.register_buffer("stopped", stopped)
        # Read detached: absent experts, and stopped ones (a Python bool: no branch on a tensor
        # inside torch.compile).
        self.register_buffer("cut", ~present | (stopped & stop_gradient))
        self.any_cut = bool(self.cut.any())
        if self.gated:
            self.gate_w = nn.Parameter(take("gate.weight", [u, e, e * w]))
            self.gate_b = nn.Parameter(take("gate.bias", [u, e]))
        self.layer_w, self.layer_b = nn.ParameterList(), nn.ParameterList()
        fan_in = w
        for l, out in enumerate(desc["hidden"]):
            self.layer_w.append(nn.Parameter(take(f"tower.{l}.weight", [u, out, fan_in])))
            self.layer_b.append(nn.Parameter(take(f"tower.{l}.bias", [u, out])))
            fan_in = out
        self.head_w = nn.Parameter(take("tower.head.weight", [u, 1, fan_in]))
        self.head_b = nn.Parameter(take("tower.head.bias", [u, 1]))

    def mix(self, h):
        """Each tower's input c [U, B, W] from the experts' outputs h [E, B, W]."""
        e, b, w = h.shape
        hu = h.unsqueeze(0).expand(self.present.shape[0], e, b, w)
        if self.any_cut:
            hu = torch.where(self.cut[:, :, None, None], h.detach().unsqueeze(0), hu)
        if not self.gated:
            keep = self.present.to(h.dtype)
            return torch.einsum("ue,uebw->ubw", keep / keep.sum(1, keepdim=True), hu)
        x = hu.permute(0, 2, 1, 3).reshape(hu.shape[0], b, e * w)  # [U, B, E·W], slot order
        a = torch.baddbmm(self.gate_b[:, None, :], x, self.gate_w.transpose(1, 2))  # [U, B, E]
        g = torch.softmax(a.masked_fill(~self.present[:, None, :], float("-inf")), -1)
        return torch.einsum("ube,uebw->ubw", g, hu)

    def forward(self, h, train, dropout):
        """The logits [B, U] of the towers over h [E, B, W]."""
        c = self.mix(h)
        for w_, b_ in zip(self.layer_w, self.layer_b):
            c = torch.relu(torch.baddbmm(b_[:, None, :], c, w_.transpose(1, 2)))
            if train and dropout > 0:
                c = F.dropout(c, dropout, True)
        z = torch.baddbmm(self.head_b[:, None, :], c, self.head_w.transpose(1, 2))  # [U, B, 1]
        return z.squeeze(-1).transpose(0, 1)
