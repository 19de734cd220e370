"""Handing memory the process has freed back to the operating system."""

from __future__ import annotations

import ctypes
import sys


def return_freed_memory() -> None:
    """Ask the C library to give freed heap pages back to the system (glibc's `malloc_trim`).

    The map's stores are freed into the C heap, which keeps the pages for reuse and still counts them in the
    process's memory; after a long run's mapping that is hundreds of MiB the final stage would otherwise add to.
    Does nothing where the C library has no `malloc_trim` (macOS, Windows, musl).
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
