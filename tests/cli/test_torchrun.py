"""Folder jobs under torchrun: each rank takes every world-th file; evaluate's report equals one process's."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from anyres.enhancement.unet import UNetEnhancer
from anyres.hub import save_network

pytestmark = pytest.mark.slow


def _anyres(*args, ranks=1, cwd=None):
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}"]
    cmd = [*launch, "-m", "anyres.cli"] if ranks > 1 else [sys.executable, "-m", "anyres.cli"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([*cmd, *map(str, args)], capture_output=True, text=True, env=env, cwd=cwd, timeout=240)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (30 + i, 36, 3), dtype=np.uint8)).save(folder / f"im{i}.png")
    return folder


@pytest.mark.parametrize("command", ["upscale", "enhance"])
def test_two_ranks_write_what_one_process_writes(images, tmp_path, command):
    if command == "upscale":
        args = ["upscale", images, "--scale", "2.5", "--model", "bicubic"]
    else:
        args = ["enhance", images, "--model", save_network(UNetEnhancer(width=2, levels=2), tmp_path / "unet")]
    one = _anyres(*args, "--out-dir", tmp_path / "one")
    two = _anyres(*args, "--out-dir", tmp_path / "two", ranks=2)
    assert one.returncode == 0 and two.returncode == 0, two.stderr
    names = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert names == [f"im{i}.png" for i in range(5)] and sorted(p.name for p in (tmp_path / "two").iterdir()) == names
    for name in names:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    assert "[rank 0/2] 3 done, 0 skipped, 0 failed" in two.stderr  # files 0, 2, 4
    assert "[rank 1/2] 2 done, 0 skipped, 0 failed" in two.stderr  # files 1, 3


def test_rank_zero_reports_every_image_bit_identically(images, tmp_path):
    (images / "broken.png").write_bytes(b"not a png")
    try:
        args = ["evaluate", "--model", "bicubic", "--data", images, "--scales", "2,3.5"]
        one = _anyres(*args, "--json", tmp_path / "one.json")
        two = _anyres(*args, "--json", tmp_path / "two.json", ranks=2)
    finally:
        (images / "broken.png").unlink()
    assert one.returncode == 1 and two.returncode == 1, two.stderr  # the broken image fails both runs
    a, b = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("one", "two"))
    for r in (*a["results"], *b["results"]):
        r.pop("seconds")
    assert a == b and a["failed"][0]["image"] == "broken" and a["results"][0]["n"] == 5
    assert two.stdout.count("| x2 |") == 1  # the table is printed once, by rank 0
