"""Paired, interleaved timing: the only kind of comparison that means something on a shared machine.

Other processes come and go on the benchmark machine, so absolute times drift by large factors
from one minute to the next. Every comparison here therefore runs all of its methods on the
same item, one after another, in an order that rotates from item to item, and reports the
median over items of the per-item *ratio*. A burst of outside load then hits both sides of a
ratio at about the same time instead of one side only.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Paired:
    """Per-item seconds of several methods, measured interleaved on the same items."""

    seconds: dict[str, list[float]] = field(default_factory=dict)

    def median_s(self, method: str) -> float:
        return statistics.median(self.seconds[method])

    def ratio(self, numerator: str, denominator: str) -> float:
        """Median over items of numerator time / denominator time on the same item."""
        pairs = zip(self.seconds[numerator], self.seconds[denominator], strict=True)
        return statistics.median(n / d for n, d in pairs)

    def per_s(self, method: str) -> float:
        """Items per second from the median per-item time."""
        return 1.0 / self.median_s(method)


def time_interleaved(
    items: Sequence[Any],
    methods: dict[str, Callable[[Any], object]],
    warmup: int = 1,
) -> Paired:
    """Run every method on every item, rotating the order of methods from item to item.

    The first `warmup` items are run but not recorded (imports, caches, page cache).
    """
    names = list(methods)
    result = Paired({name: [] for name in names})
    for i, item in enumerate(items):
        k = i % len(names)
        for name in names[k:] + names[:k]:
            start = time.perf_counter()
            methods[name](item)
            elapsed = time.perf_counter() - start
            if i >= warmup:
                result.seconds[name].append(elapsed)
    if not all(result.seconds.values()):
        raise ValueError(f"need more than {warmup} items to time anything (got {len(items)})")
    return result


def time_repeated(methods: dict[str, Callable[[], object]], repeats: int) -> Paired:
    """Run whole jobs (no per-item split) `repeats` times each, interleaved and rotated."""
    return time_interleaved(list(range(repeats + 1)), {n: (lambda _i, f=f: f()) for n, f in methods.items()})
