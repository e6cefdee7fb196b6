"""Shared timing helpers of the PyTorch baselines in benches/torch/.

The directory has no __init__.py on purpose: it is named `torch`, and a regular package of that name
on sys.path would shadow PyTorch itself. Its scripts run as `python3 benches/torch/<script>.py` from
the repository root; they import each other through sys.path[0] (this directory).
"""
import statistics
import time

import torch


def sync(device):
    """Waits for the device (CUDA launches are asynchronous; the CPU needs nothing)."""
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


def median_seconds(fn, repeats, device, warmup=2):
    """Median wall-clock seconds of `repeats` calls of fn() after `warmup` calls, synchronizing the
    device around every timed call."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(max(1, repeats)):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def short_error(e):
    """One line naming an exception, for the "n/a" of a torch.compile that failed."""
    text = str(e).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(e).__name__}: {first}"[:160]
