"""keep_freed_memory: glibc keeps freed blocks for reuse, so repeated large allocations stop faulting pages in."""

import subprocess
import sys

import pytest

CODE = """
import resource, sys, torch
from anyres.train.engine import keep_freed_memory
if sys.argv[1] == "1":
    applied = keep_freed_memory()
else:  # glibc's starting values, held fixed (its defaults adapt to the process's history, so vary between runs)
    import ctypes
    libc = ctypes.CDLL("libc.so.6")
    applied = libc.mallopt(-3, 128 * 1024) == 1 and libc.mallopt(-1, 128 * 1024) == 1
def cycle():
    xs = [torch.ones(2 << 20) for _ in range(8)]  # 8 x 8 MiB, every page written, then all freed
    del xs
cycle()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    cycle()
print(int(applied), resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(flag, env=None):
    out = subprocess.run([sys.executable, "-c", CODE, flag], capture_output=True, text=True, check=True, env=env)
    applied, faults = out.stdout.split()
    return applied == "1", int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_memory_is_reused_instead_of_faulted_in_again():
    import os

    applied, kept = _faults("1")
    if not applied:
        pytest.skip("not glibc")
    fixed, default = _faults("0")
    assert fixed
    # 10 cycles of 64 MiB = 16,384 pages of 4 KiB each: with glibc's starting thresholds every block is a fresh
    # mapping whose pages fault in again at each cycle; kept, the pages are reused, so 10 cycles cost less than
    # one cycle's worth.
    pages = 64 * 1024 * 1024 // 4096
    assert default > 0.8 * 10 * pages and kept < pages
    off, _ = _faults("1", env={**os.environ, "ANYRES_KEEP_FREED_MEMORY": "0"})
    assert not off
