"""The OBD exploration table (scripts/obd-explore.sh): one markdown row per (policy, seed) from the
`wgrec ope --json` files in OUT, the logged policies' on-policy rates first."""
import json
import sys


def interval(e):
    return f"{e['estimate']:.4f} [{e['lower']:.4f}, {e['upper']:.4f}]"


def estimates(path):
    with open(path) as f:
        data = json.load(f)
    return {e["estimator"]: e for e in data["estimates"]}


def main(out, kind):
    print("| policy | seed | test AUC | IPS [95%] | SNIPS [95%] | DR [95%] |")
    print("|---|---|---|---|---|---|")
    for name, file in [("logged uniform random, on-policy (test rows)", "random"),
                       ("logged Bernoulli TS, on-policy (bts.tsv)", "bts")]:
        e = estimates(f"{out}/{file}.json")["on-policy"]
        print(f"| {name} | — | — | {interval(e)} | — | — |")
    for rule in ["greedy", "thompson"]:
        for seed in [1, 2, 3]:
            run = f"{out}/{kind}-s{seed}"
            with open(f"{run}-train.json") as f:
                auc = json.load(f).get("test_auc", float("nan"))
            e = estimates(f"{run}-{rule}.json")
            cells = " | ".join(interval(e[k]) for k in ["ips", "snips", "dr"])
            print(f"| {rule} ({kind}) | {seed} | {auc:.3f} | {cells} |")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
