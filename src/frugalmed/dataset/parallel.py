"""An order-keeping process pool that never holds more than a few results per worker.

`ProcessPoolExecutor.map` submits every input at once: when the consumer (the row writer)
falls behind, finished results pile up in memory. Here at most `in_flight` inputs per worker are
submitted ahead of the one being consumed, so memory does not grow with the number of inputs.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")
_END: Any = object()  # marks the end of the inputs (an input may be None)


def ordered_map(
    function: Callable[[T], R],
    items: Iterable[T],
    workers: int,
    *,
    in_flight: int = 4,
    mp_context: Any = None,
    initializer: Callable[[], None] | None = None,
) -> Iterator[R]:
    """function(item) for every item, yielded in input order; `workers` <= 1 runs in-process.

    `function` must be picklable (a module-level function or a functools.partial of one).
    """
    items = list(items)
    if workers <= 1 or len(items) <= 1:
        for item in items:
            yield function(item)
        return
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp_context,
                             initializer=initializer) as pool:
        pending: deque[Future[R]] = deque()
        queue = iter(items)
        for item in queue:
            pending.append(pool.submit(function, item))
            if len(pending) >= in_flight * workers:
                break
        while pending:
            yield pending.popleft().result()
            following = next(queue, _END)
            if following is not _END:
                pending.append(pool.submit(function, following))

