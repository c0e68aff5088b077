"""keep_freed_memory: glibc keeps freed blocks for reuse, so repeated large allocations stop faulting pages in."""

import subprocess
import sys

import pytest

CODE = """
import resource, sys, torch
from anyres.train.engine import keep_freed_memory
applied = keep_freed_memory() if sys.argv[1] == "1" else False
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
    _, default = _faults("0")
    # 10 cycles of 64 MiB: with glibc's defaults the heap is trimmed after each and its pages fault in again
    # (~16k faults per cycle); kept, they are reused.
    assert default > 10 * 16_000 * 0.5 and kept < default / 10
    off, _ = _faults("1", env={**os.environ, "ANYRES_KEEP_FREED_MEMORY": "0"})
    assert not off
