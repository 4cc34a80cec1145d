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

import torch

from .estimate import SPEEDS_FILE, cpu_name
from .models import autocast
from .paths import atomic_write, cache_dir

# One MiniLM block's feed-forward matmul at the default training batch: 16 texts x 48 tokens, 384 -> 1536
TOKENS, HIDDEN, INNER = 16 * 48, 384, 1536
BUDGET_S = 0.3
MEASURES = 3


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


def speed(device: torch.device, dtype) -> float:
    """matmul_rate for this machine: the best of its first MEASURES runs' measurements, kept in the
    cache (a first run beside a busy process measures too slow; the next ones correct it), then read."""
    path = cache_dir() / SPEEDS_FILE
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    key = _key(device, dtype)
    seen = known.get(key) if isinstance(known, dict) else None
    seen = [v for v in seen if isinstance(v, (int, float)) and v > 0] if isinstance(seen, list) else []
    if len(seen) < MEASURES:
        seen.append(round(matmul_rate(device, dtype), 1))
        known = {**(known if isinstance(known, dict) else {}), key: seen}
        atomic_write(path, json.dumps(known, indent=1))
    return float(max(seen))
