"""Sharing the CPU with other processes: every run's torch threads follow what the machine has free.

Measured on a 2-core machine (docs/PERFORMANCE.md, "Worker threading"): with two threads a run
beside one busy process took 2.9x as long as alone, because each OpenMP barrier waits (spinning)
for a thread the other process has descheduled; OMP_WAIT_POLICY=PASSIVE cut that to 1.4x but made
every run alone 1.26x slower; one thread loses nothing beside a busy process and is 1.9x slower
alone. So: the default wait policy, all cores while the run has the machine, and one core fewer
for each core the other processes keep busy. `training.run` polls it before every step and batch,
so the CLI's run and sweep, the app's worker and each Ray task share cores the same way.

The count of threads changes the order in which a matmul sums, and so a trained weight's last bits:
two runs of one seed are bit for bit the same only at the same count. FTLAB_THREADS=fixed keeps every
run at the count its process has (torch's default, or what a Ray task was given), FTLAB_THREADS=N at N,
whatever else runs (the test suite sets `fixed`: its own servers and workers come and go).
"""
from __future__ import annotations

import math
import os
import time

import psutil
import torch

from .errors import ConfigError


PINNED_ENV = "FTLAB_THREADS"


def pinned_threads(current: int) -> int | None:
    """The count FTLAB_THREADS pins a run to (`fixed`: the `current` one), or None when it is not set."""
    text = os.environ.get(PINNED_ENV, "").strip().lower()
    if not text:
        return None
    if text == "fixed":
        return current
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"{PINNED_ENV} must be 'fixed' or a whole number of threads, at least 1 (got {text!r})")
    return int(text)


class ThreadGovernor:
    """torch's intra-op threads of the calling thread, set from the other processes' CPU use.

    Another process counts as holding a core once it uses more than BUSY_CORES of one between two
    looks, and as having let it go once it uses less than FREE_CORES (the gap keeps the count from
    flapping). It looks at most once every EVERY_S seconds; `restore()` puts back the count it found.
    """

    BUSY_CORES, FREE_CORES, EVERY_S = 0.6, 0.3, 1.0

    def __init__(self):
        self.me = psutil.Process()
        self.cores = torch.get_num_threads()
        self.threads, self.switches = self.cores, 0
        self.fixed = pinned_threads(self.cores)
        if self.fixed is not None and self.fixed != self.cores:
            torch.set_num_threads(self.fixed)
            self.threads = self.fixed
        self.last = self._sample()

    def _sample(self):
        t = psutil.cpu_times()
        busy = t.user + t.nice + t.system + getattr(t, "irq", 0) + getattr(t, "softirq", 0)
        own = self.me.cpu_times()
        return time.monotonic(), busy, own.user + own.system

    def others(self) -> float | None:
        """Cores the other processes used since the last look (None: too soon to say)."""
        now = self._sample()
        dt = now[0] - self.last[0]
        if dt < self.EVERY_S:
            return None
        used = max(0.0, (now[1] - self.last[1]) - (now[2] - self.last[2])) / dt
        self.last = now
        return used

    def poll(self) -> None:
        if self.cores < 2 or self.fixed is not None:
            return
        used = self.others()
        if used is None:
            return
        fewer = max(1, self.cores - math.floor(used + 1 - self.BUSY_CORES))    # cores taken, rounded up past 0.6
        more = max(1, self.cores - math.floor(used + 1 - self.FREE_CORES))     # cores freed, below 0.3 of one
        want = fewer if fewer < self.threads else more if more > self.threads else self.threads
        if want != self.threads:
            torch.set_num_threads(want)
            self.threads, self.switches = want, self.switches + 1

    def restore(self) -> None:
        if self.threads != self.cores:
            torch.set_num_threads(self.cores)
            self.threads = self.cores
