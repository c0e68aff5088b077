"""``anyres export``: ONNX (run with onnxruntime) and TorchScript files equal ``--mode exact`` at any size."""

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from anyres import load
from anyres.cli import main
from anyres.errors import ConfigError
from anyres.registry import NETWORKS
from anyres.sr.export import export
from anyres.sr.fixed import native
from anyres.sr.render import render

pytestmark = [pytest.mark.usefixtures("one_thread"), pytest.mark.slow]

OFFICIAL = Path(__file__).resolve().parents[1] / "data" / "official"
# (LR size, output size): integer and non-integer scales, odd sides, LR sizes unlike the traced one, and an
# output with fewer rows than the graph has bands.
CASES = (((20, 24), (80, 96)), ((33, 17), (115, 60)), ((9, 14), (23, 29)), ((3, 4), (2, 7)))


def _run_file(path, fmt, lr, size):
    if fmt == "onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feeds = {"lr": lr.numpy()} if size is None else {"lr": lr.numpy(), "size": np.array(size, dtype=np.int64)}
        return torch.from_numpy(session.run(None, feeds)[0])
    module = torch.jit.load(str(path))
    with torch.no_grad():
        return module(lr) if size is None else module(lr, torch.tensor(size))


def _tiny(name):
    torch.manual_seed(3)
    net = NETWORKS.build(name, **NETWORKS[name].example).eval()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return net


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
@pytest.mark.parametrize("name", ["liif", "diinn"])
def test_one_arbitrary_scale_file_serves_every_size(name, fmt, tmp_path):
    net = _tiny(name)
    path = export(net, tmp_path / f"m.{fmt}", fmt, bands=3)  # unequal bands, and an empty one for 2 rows
    for lr_size, size in CASES:
        lr = torch.rand(1, 3, *lr_size)
        expected = render(net, lr, size, mode="exact", tile=None)
        out = _run_file(path, fmt, lr, size)
        assert out.shape == (1, 3, *size)
        assert (out - expected).abs().max() < 1e-4


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_fixed_scale_file_gives_the_native_output_at_any_input_size(fmt, tmp_path):
    up = load(OFFICIAL / "rrdbnet-x2-tiny.pth")
    path = export(up, tmp_path / f"m.{fmt}", fmt)
    for lr_size, _ in CASES:
        lr = torch.rand(1, 3, *lr_size)
        out = _run_file(path, fmt, lr, None)
        assert out.shape == (1, 3, 2 * lr_size[0], 2 * lr_size[1])
        assert (out - native(up.net, lr)).abs().max() < 1e-4


def test_the_shipped_default_model_matches_exact_mode(tmp_path):
    up = load("liif", options={"mode": "exact", "tile": None})
    path = export(up, tmp_path / "liif.onnx", "onnx", bands=2)
    lr = torch.rand(1, 3, 24, 20)
    for size in ((96, 80), (61, 50)):  # x4 and x2.5
        assert (_run_file(path, "onnx", lr, size) - up.upscale(lr, size)).abs().max() < 1e-4


def test_a_sampled_prior_is_refused_and_nothing_is_written(tmp_path):
    net = NETWORKS.build("liifusion", **{**NETWORKS["liifusion"].example, "stage": 2, "denoise_blocks": 1})
    with pytest.raises(ConfigError, match="random prior"):
        export(net, tmp_path / "m.onnx")
    with pytest.raises(ConfigError, match="unknown export format"):
        export(_tiny("liif"), tmp_path / "m.x", "tflite")
    with pytest.raises(ConfigError, match="bands must be"):
        export(_tiny("liif"), tmp_path / "m.onnx", bands=0)
    assert list(tmp_path.iterdir()) == []


def test_cli_writes_once_and_refuses_baselines_and_existing_files(tmp_path):
    out = tmp_path / "r.pt"
    ckpt = OFFICIAL / "rrdbnet-x4-tiny.pth"
    res = CliRunner().invoke(main, ["export", str(ckpt), "--format", "torchscript", "-o", str(out)])
    assert res.exit_code == 0, res.output
    lr = torch.rand(1, 3, 7, 9)
    assert (_run_file(out, "torchscript", lr, None) - native(load(ckpt).net, lr)).abs().max() < 1e-4
    before = out.read_bytes()
    for args, message in (
        (["export", str(ckpt), "--format", "torchscript", "-o", str(out)], "--overwrite"),
        (["export", "bicubic", "-o", str(tmp_path / "b.onnx")], "interpolation baseline"),
    ):
        res = CliRunner().invoke(main, args)
        assert res.exit_code == 1 and message in res.stderr and "Traceback" not in res.output, res.output
    assert out.read_bytes() == before and not (tmp_path / "b.onnx").exists()
