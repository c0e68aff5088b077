"""scripts/interpolate_weights.py: network interpolation of two weights folders of one architecture."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from anyres.hub import load_network, save_network
from anyres.sr.liif import LIIF
from conftest import tiny_liif_config

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "interpolate_weights.py"


def _run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True)


def test_interpolation_ends_at_each_model_and_is_linear_between(tmp_path):
    torch.manual_seed(0)
    a, b = LIIF(tiny_liif_config()), LIIF(tiny_liif_config())
    save_network(a, tmp_path / "a")
    save_network(b, tmp_path / "b")
    for alpha in (0.0, 0.25, 1.0):
        out = tmp_path / f"mix{alpha}"
        assert _run(tmp_path / "a", tmp_path / "b", "--alpha", alpha, "-o", out).returncode == 0
        mixed, config = load_network(out)
        assert config["interpolation"]["alpha"] == alpha
        sa, sb, sm = a.state_dict(), b.state_dict(), mixed.state_dict()
        for key in sa:
            torch.testing.assert_close(sm[key], (1 - alpha) * sa[key] + alpha * sb[key], atol=1e-7, rtol=0)
    assert json.loads((tmp_path / "mix1.0" / "config.json").read_text())["arch"] == "liif"


@pytest.mark.parametrize("alpha", ["-0.1", "1.5"])
def test_alpha_outside_the_segment_is_refused(tmp_path, alpha):
    save_network(LIIF(tiny_liif_config()), tmp_path / "a")
    result = _run(tmp_path / "a", tmp_path / "a", "--alpha", alpha, "-o", tmp_path / "out")
    assert result.returncode != 0 and "--alpha must be in [0, 1]" in result.stderr
    assert not (tmp_path / "out").exists()


def test_different_shapes_are_refused(tmp_path):
    save_network(LIIF(tiny_liif_config()), tmp_path / "a")
    save_network(LIIF({**tiny_liif_config(), "hidden": [8]}), tmp_path / "b")
    result = _run(tmp_path / "a", tmp_path / "b", "--alpha", "0.5", "-o", tmp_path / "out")
    assert result.returncode != 0 and "differ" in result.stderr
    assert not (tmp_path / "out").exists()
