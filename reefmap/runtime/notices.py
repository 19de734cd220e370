"""The warnings of one run: collected for that run only (per thread of work, not process-wide), so they can go into
its summary.json and be shown when it ends while other runs proceed in other threads."""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator

_collected: ContextVar[list[str] | None] = ContextVar("reefmap_run_notices", default=None)


def warn(message: str) -> None:
    """A warning of the run in progress in this context; outside a run, an ordinary Python warning."""
    collected = _collected.get()
    if collected is None:
        warnings.warn(message, stacklevel=2)
    else:
        collected.append(message)


@contextmanager
def collect_notices() -> Iterator[list[str]]:
    """Collect the `warn` calls made in this context (and in threads started with its copy) into the yielded list."""
    collected: list[str] = []
    token = _collected.set(collected)
    try:
        yield collected
    finally:
        _collected.reset(token)


def show_notices(messages: list[str]) -> None:
    """Show a run's collected warnings through Python's warning display (the CLI formats it as one line each)."""
    for message in messages:
        warnings.showwarning(UserWarning(message), UserWarning, __file__, 0)
