"""Timing rounds of calls: client CPU (``time.process_time``) and wall time, medians of rounds.

Stdlib only, and no timetracer import: the raw PyMongo worker uses it too.
"""

from __future__ import annotations

import gc
import statistics
import time
from typing import Any, Callable, Dict, List, Optional

# A round runs a batch of calls; it returns (cpu seconds, wall seconds) for the batch.
Round = Callable[[], "tuple[float, float]"]


def timed(run: Callable[[], Any]) -> tuple[float, float]:
    """CPU and wall seconds of ``run()``; a full GC first, so one round's garbage is not the next's."""
    gc.collect()
    cpu, wall = time.process_time(), time.perf_counter()
    run()
    return time.process_time() - cpu, time.perf_counter() - wall


class Series:
    """The per-item CPU and wall times (µs) of the rounds of one measurement."""

    def __init__(self, per: int) -> None:
        self.per = per
        self.cpu: List[float] = []
        self.wall: List[float] = []

    def add(self, cpu: float, wall: float) -> None:
        self.cpu.append(cpu / self.per * 1e6)
        self.wall.append(wall / self.per * 1e6)

    def summary(self, **extra: Any) -> Dict[str, Any]:
        out: Dict[str, Any] = {
            "cpu_us": statistics.median(self.cpu),
            "wall_us": statistics.median(self.wall),
            "cpu_rounds_us": [round(v, 3) for v in self.cpu],
            "per_round": self.per,
            "rounds": len(self.cpu),
        }
        out.update(extra)
        return out


def interleave(rounds: int, runs: Dict[str, tuple[Round, int]]) -> Dict[str, Series]:
    """Run one round of each named ``(round, items per round)`` in turn, ``rounds`` times.

    A first, untimed cycle warms caches, connections and lazy imports. Interleaving spreads slow
    drift (CPU frequency, the server's state) over every mode alike.
    """
    series = {name: Series(per) for name, (_, per) in runs.items()}
    for cycle in range(rounds + 1):
        for name, (run, _) in runs.items():
            cpu, wall = run()
            if cycle:
                series[name].add(cpu, wall)
    return series


def paired_difference(a: Series, b: Series) -> Optional[float]:
    """Median over rounds of ``a - b`` CPU µs per item, rounds paired in the order they ran."""
    diffs = [x - y for x, y in zip(a.cpu, b.cpu)]
    return statistics.median(diffs) if diffs else None
