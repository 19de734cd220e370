"""Wall-clock time and item counts per pipeline stage."""

from __future__ import annotations

import contextlib
import time
from collections import defaultdict


class StageTimer:
    """Accumulates seconds and items per named stage; `report()` gives seconds and items/s."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self.items: dict[str, int] = defaultdict(int)

    @contextlib.contextmanager
    def stage(self, name: str, items: int = 0):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - start
            self.items[name] += items

    def report(self) -> dict[str, dict[str, float]]:
        out = {}
        for name, seconds in self.seconds.items():
            entry = {"seconds": round(seconds, 4)}
            if self.items[name]:
                entry["items"] = self.items[name]
                entry["items_per_s"] = round(self.items[name] / seconds, 3) if seconds > 0 else None
            out[name] = entry
        return out
