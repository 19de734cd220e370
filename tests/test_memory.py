import sys

import numpy as np
import pytest

from reefmap.runtime.memory import return_freed_memory


def _rss_mib() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="malloc_trim is glibc's")
def test_freed_heap_memory_goes_back_to_the_system():
    blocks = [np.ones(12_000) for _ in range(3000)]  # 96 kB each: below glibc's mmap threshold, so on the heap
    pinned = blocks[-1]  # keeps the heap from shrinking at its top by itself
    del blocks
    before = _rss_mib()
    return_freed_memory()
    assert before - _rss_mib() > 150  # of the ~290 MiB freed
    assert pinned.sum() == 12_000
