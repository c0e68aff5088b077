import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import anyres
from anyres.cli import main
from anyres.hub import save_network
from anyres.io import read_image
from anyres.sr.liif import LIIF
from conftest import tiny_liif_config


@pytest.fixture
def model_dir(tmp_path):
    net = LIIF(tiny_liif_config())
    return save_network(net, tmp_path / "tiny", extra={"name": "tiny"})


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _rgb(path, size=(20, 14)):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def test_upscale_scale_size_width_height(tmp_path, model_dir):
    src = _rgb(tmp_path / "a.png")
    for opts, expected in (
        [("--scale", 2.5), (50, 35)],
        [("--size", "33x21"), (33, 21)],
        [("--width", 40), (40, 28)],
        [("--height", 7), (10, 7)],
    ):
        out = tmp_path / f"out_{opts[0][2:]}.png"
        res = _run("upscale", src, *opts, "-o", out, "--model", model_dir)
        assert res.exit_code == 0, res.output
        assert Image.open(out).size == expected


def test_alpha_grayscale_and_16_bit_are_preserved(tmp_path, model_dir):
    rgba = np.zeros((12, 10, 4), np.uint8)
    rgba[..., :3] = 90
    rgba[..., 3] = 128
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    Image.fromarray(np.full((12, 10), 77, np.uint8), "L").save(tmp_path / "gray.png")
    Image.fromarray(np.full((12, 10), 40000, np.uint16)).save(tmp_path / "deep.png")
    res = _run(
        "upscale",
        tmp_path / "alpha.png",
        tmp_path / "gray.png",
        tmp_path / "deep.png",
        "--scale",
        2,
        "--out-dir",
        tmp_path / "out",
        "--model",
        model_dir,
    )
    assert res.exit_code == 0, res.output
    a = Image.open(tmp_path / "out" / "alpha.png")
    assert a.mode == "RGBA" and a.size == (20, 24)
    assert np.all(np.asarray(a)[..., 3] == 128)  # a constant alpha stays constant through its resize
    assert Image.open(tmp_path / "out" / "gray.png").mode == "L"
    _, meta = read_image(tmp_path / "out" / "deep.png")
    assert meta.bit_depth == 16 and meta.gray


def test_bad_inputs_are_reported_while_others_finish(tmp_path, model_dir):
    good = _rgb(tmp_path / "good.png")
    (tmp_path / "bad.png").write_text("not an image")
    res = _run(
        "upscale",
        tmp_path / "bad.png",
        good,
        tmp_path / "missing.png",
        "--scale",
        2,
        "--out-dir",
        tmp_path / "out",
        "--model",
        model_dir,
    )
    assert res.exit_code == 1
    assert (tmp_path / "out" / "good.png").exists()
    assert not (tmp_path / "out" / "bad.png").exists()
    errors = [line for line in res.output.splitlines() if line.startswith("anyres: error:")]
    assert len(errors) == 2 and any("bad.png" in e for e in errors) and any("missing.png" in e for e in errors)
    assert "Traceback" not in res.output


def test_outputs_and_inputs_are_never_clobbered(tmp_path, model_dir):
    src = _rgb(tmp_path / "a.png")
    before = src.read_bytes()
    res = _run("upscale", src, "--scale", 2, "-o", src, "--overwrite", "--model", model_dir)
    assert res.exit_code == 1 and src.read_bytes() == before
    out = tmp_path / "o.png"
    out.write_bytes(b"keep")
    res = _run("upscale", src, "--scale", 2, "-o", out, "--model", model_dir)
    assert res.exit_code == 1 and "overwrite" in res.output and out.read_bytes() == b"keep"
    assert _run("upscale", src, "--scale", 2, "-o", out, "--overwrite", "--model", model_dir).exit_code == 0
    assert Image.open(out).size == (40, 28)
    # Default name beside the input.
    assert _run("upscale", src, "--scale", 2, "--model", model_dir).exit_code == 0
    assert (tmp_path / "a_anyres.png").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["--scale", 2, "--width", 3],
        [],
        ["--scale", -1],
        ["--size", "12by4"],
        ["--scale", 2, "--model", "no-such-model"],
    ],
)
def test_option_errors_are_one_line(tmp_path, model_dir, args):
    src = _rgb(tmp_path / "a.png")
    res = _run("upscale", src, *args)
    assert res.exit_code != 0
    assert "Traceback" not in res.output


def test_python_api_matches_the_cli(tmp_path, model_dir):
    src = _rgb(tmp_path / "a.png")
    sr = anyres.upscale(src, 2, model=model_dir, mode="exact")
    assert sr.shape == (1, 3, 28, 40) and sr.min() >= 0 and sr.max() <= 1
    _run("upscale", src, "--scale", 2, "-o", tmp_path / "cli.png", "--model", model_dir, "--mode", "exact")
    cli, _ = read_image(tmp_path / "cli.png")
    assert torch.equal(cli, torch.round(sr * 255) / 255)


@pytest.mark.parametrize("name", ["liif", "diinn", "liifusion-s1", "liifusion"])
def test_shipped_models_load_and_beat_nearest(name):
    # The packaged weights rebuild from their config alone and do better than nearest on a smooth image.
    from anyres.evaluation import make_lr
    from anyres.metrics import measure

    g = torch.Generator().manual_seed(0)
    hr = torch.nn.functional.interpolate(
        torch.rand(1, 3, 12, 12, generator=g), size=(48, 48), mode="bicubic", align_corners=False
    ).clamp(0, 1)
    hr, lr = make_lr(hr, 2)
    sr = anyres.upscale(lr, size=(48, 48), model=name)
    near = anyres.upscale(lr, size=(48, 48), model="nearest")
    assert measure(sr, hr, 2).psnr > measure(near, hr, 2).psnr
