import subprocess
import sys

import pytest

# Run in a fresh interpreter: the suite's own heap (other tests' arrays, threads) would blur the figure.
PROGRAM = """
import numpy as np
from reefmap.runtime.memory import return_freed_memory

def rss_mib():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024

blocks = [np.ones(12_000) for _ in range(3000)]  # 96 kB each: below glibc's mmap threshold, so on the heap
pinned = blocks[-1]  # keeps the heap from shrinking at its top by itself
del blocks
before = rss_mib()
return_freed_memory()
print(before - rss_mib(), pinned.sum())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="malloc_trim is glibc's")
def test_freed_heap_memory_goes_back_to_the_system():
    done = subprocess.run([sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=120, check=True)
    returned_mib, pinned_sum = (float(v) for v in done.stdout.split())
    assert returned_mib > 150  # of the ~290 MiB freed
    assert pinned_sum == 12_000
