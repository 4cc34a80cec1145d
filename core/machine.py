"""How fast this machine multiplies matrices: measured once per (CPU, cores, torch, device, precision)
and kept in the cache, so a run's first estimate fits the host it runs on (core/estimate.py scales
the rates measured on the reference machine by it).

A run is mostly the encoder's matmuls, and hosts differ by up to ~5x in them (AMX bf16 against an
fp32-only CPU), while its fixed costs (imports, loading) differ far less. So one number per precision,
about 0.3 s to measure, is what the start-of-run estimate needs before this machine has run anything.
"""
from __future__ import annotations

import json
import time

import psutil
import torch

from .estimate import SPEEDS_FILE, cpu_name
from .models import autocast
from .paths import atomic_write, cache_dir

# One MiniLM block's feed-forward matmul at the default training batch: 16 texts x 48 tokens, 384 -> 1536
TOKENS, HIDDEN, INNER = 16 * 48, 384, 1536
BUDGET_S = 0.3
MEASURES = 3
QUIET_CORES = 0.3      # other processes' CPU use (cores) below which a measurement is kept


def _key(device: torch.device, dtype) -> str:
    precision = "fp32" if dtype is None else str(dtype).replace("torch.", "")
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    return f"{where}|{torch.get_num_threads()} threads|torch {torch.__version__}|{device.type}|{precision}"


@torch.inference_mode()
def matmul_rate(device: torch.device, dtype) -> float:
    """GFLOP/s of the encoder's typical matmul (a linear layer and back) in `dtype` (None: fp32);
    the best of the repeats that fit in BUDGET_S, after one warm-up."""
    gen = torch.Generator().manual_seed(0)     # its own: the run's seeded global generator is left as it was
    x, up, down = (torch.randn(*shape, generator=gen).to(device)
                   for shape in ((TOKENS, HIDDEN), (INNER, HIDDEN), (HIDDEN, INNER)))
    flops = 2 * 2 * TOKENS * HIDDEN * INNER
    best, spent = float("inf"), 0.0
    for i in range(50):
        t = time.perf_counter()
        with autocast(device, dtype):
            torch.nn.functional.linear(torch.nn.functional.linear(x, up), down)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        took = time.perf_counter() - t
        if i:                                    # the first call sets the kernels up
            best, spent = min(best, took), spent + took
        if spent > BUDGET_S:
            break
    return flops / best / 1e9


def others_busy_while(measure) -> tuple[float, float]:
    """(measure()'s value, the cores other processes kept busy meanwhile), from the machine's and this
    process's CPU times (core.threads reads them the same way)."""
    me = psutil.Process()

    def sample():
        t, own = psutil.cpu_times(), me.cpu_times()
        return time.monotonic(), t.user + t.nice + t.system, own.user + own.system

    before = sample()
    value = measure()
    after = sample()
    elapsed = max(1e-6, after[0] - before[0])
    return value, max(0.0, (after[1] - before[1]) - (after[2] - before[2])) / elapsed


def speed(device: torch.device, dtype) -> float:
    """matmul_rate for this machine: the best of its first MEASURES measurements taken while nothing else
    kept a core busy, kept in the cache, then read. A measurement beside a busy process is used for this
    run alone and not kept (it would make every later estimate too long until MEASURES quiet ones)."""
    path = cache_dir() / SPEEDS_FILE
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    key = _key(device, dtype)
    seen = known.get(key) if isinstance(known, dict) else None
    seen = [v for v in seen if isinstance(v, (int, float)) and v > 0] if isinstance(seen, list) else []
    if len(seen) < MEASURES:
        rate, busy = others_busy_while(lambda: round(matmul_rate(device, dtype), 1))
        if busy > QUIET_CORES and device.type == "cpu":
            return float(max(seen + [rate]))
        seen.append(rate)
        known = {**(known if isinstance(known, dict) else {}), key: seen}
        atomic_write(path, json.dumps(known, indent=1))
    return float(max(seen))
