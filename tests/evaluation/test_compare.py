"""Tests for anyres.evaluation.compare: tiny synthetic images and the interpolation baselines only (no weights needed)."""

from __future__ import annotations

import math

import click
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from anyres.cli.compare import compare_command
from anyres.errors import AnyresError
from anyres.evaluation import make_lr
from anyres.evaluation.compare import BACKGROUND, GAP, make_comparison
from anyres.io import read_image, write_image
from anyres.metrics import measure
from anyres.ops.resize import resize

MODELS = ["bicubic", "lanczos"]  # "bicubic" repeats a fixed panel and is shown once


def smooth(h: int, w: int, channels: int = 3) -> torch.Tensor:
    """A smooth colour (or gray) image (1, C, h, w) in [0, 1], rounded to 8 bits like a loaded file."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    planes = [
        0.5 + 0.4 * torch.sin(2 * math.pi * (1.3 * xx + 0.7 * yy)),
        0.5 + 0.4 * torch.cos(2 * math.pi * (0.8 * xx - 1.1 * yy)),
        0.5 + 0.3 * torch.sin(2 * math.pi * (xx * yy + 0.5 * xx)),
    ]
    x = torch.stack(planes[:channels])[None]
    return torch.round(x * 255) / 255


def label_height(img: Image.Image, crop_h: int) -> int:
    return img.height - crop_h


def test_layout_and_nearest_panel():
    lr = smooth(40, 50)
    crop = (10, 20, 64, 48)  # output is 80x100 (h x w) at scale 2
    img, records = make_comparison(lr, 2, MODELS, crop=crop)
    assert [r["label"] for r in records] == ["nearest", "bicubic", "lanczos"]
    assert all(r["psnr"] is None for r in records)
    assert img.mode == "RGB"
    assert img.width == 3 * 64 + 2 * GAP
    assert 10 <= label_height(img, 48) <= 60
    a = np.asarray(img)
    # nearest at x2: output pixel (i, j) is LR pixel (i // 2, j // 2)
    nearest = lr.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    expected = (nearest[0, :, 20:68, 10:74] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(a[:48, :64], expected)  # the label strip is below the crop
    # bicubic panel equals MATLAB bicubic, cropped
    bic = (resize(lr, size=(80, 100), mode="bicubic").clamp(0, 1)[0, :, 20:68, 10:74] * 255).round()
    np.testing.assert_array_equal(a[:48, 64 + GAP : 2 * 64 + GAP], bic.to(torch.uint8).permute(1, 2, 0).numpy())
    # gaps and label strip are background, with some white text in the strip
    assert (a[:, 64 : 64 + GAP] == BACKGROUND).all()
    strip = a[48:, :64]
    assert (strip == 255).all(axis=2).any()


def test_default_crop_is_centred_and_bounded():
    lr = smooth(30, 20)
    img, records = make_comparison(lr, 1.5, ["lanczos"])  # output 45x30: crop = whole output
    assert len(records) == 3
    a = np.asarray(img)
    near = resize(lr, size=(45, 30), mode="nearest")
    # columns may be wider than a 30-pixel crop (labels stay readable): the crop is centred in its column
    col_w = (img.width - 2 * GAP) // 3
    off = (col_w - 30) // 2
    expected = (near[0] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(a[:45, off : off + 30], expected)

    big = smooth(100, 200)
    img, _ = make_comparison(big, 2, [], crop=None)  # output 200x400: default crop 256x200
    assert img.width == 2 * 256 + GAP
    assert img.height > 200


def test_wraps_to_two_rows():
    lr = smooth(20, 20)
    models = ["lanczos", "bilinear", "area"]
    img, records = make_comparison(lr, 4, models, as_hr=False, crop=(0, 0, 64, 64))
    assert len(records) == 5
    assert img.width == 3 * 64 + 2 * GAP
    row_h = (img.height - GAP) // 2
    assert img.height == 2 * row_h + GAP and row_h > 64


def test_as_hr_psnr_labels():
    hr = smooth(48, 72)
    img, records = make_comparison(hr, 2, MODELS, as_hr=True, crop=(4, 4, 64, 40))
    labels = [r["label"] for r in records]
    assert labels == ["nearest", "bicubic", "lanczos", "HR"]
    psnr = {r["label"]: r["psnr"] for r in records}
    assert psnr["HR"] is None
    assert psnr["bicubic"] > psnr["nearest"]
    hr_c, lr = make_lr(hr, 2)
    for name in ("nearest", "bicubic", "lanczos"):
        sr = resize(lr, size=hr_c.shape[-2:], mode=name)
        assert psnr[name] == pytest.approx(measure(sr, hr_c, 2, "benchmark").psnr, abs=1e-9)
    assert img.width == 4 * 64 + 3 * GAP
    # the HR panel is the ground-truth crop
    a = np.asarray(img)
    x0 = 3 * (64 + GAP)
    expected = (hr_c[0, :, 4:44, 4:68] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(a[:40, x0 : x0 + 64], expected)


def test_degraded_lr_is_the_one_evaluate_uses(tmp_path):
    from anyres.evaluation import evaluate

    hr = smooth(48, 64)
    write_image(tmp_path / "hr" / "one.png", hr)
    _img, records = make_comparison(
        tmp_path / "hr" / "one.png", 4, ["bicubic"], as_hr=True, crop=(0, 0, 32, 32), degradation="realesrgan", seed=3
    )
    report = evaluate("bicubic", tmp_path / "hr", [4], degradation="realesrgan", seed=3, progress=False)
    psnr = {r["label"]: r["psnr"] for r in records}
    assert psnr["bicubic"] == pytest.approx(report["results"][0]["psnr"], abs=1e-6)
    clean = {r["label"]: r["psnr"] for r in make_comparison(hr, 4, ["bicubic"], as_hr=True)[1]}
    assert psnr["bicubic"] < clean["bicubic"] - 1  # the noisy, blurred LR, not the bicubic one
    other = make_comparison(tmp_path / "hr" / "one.png", 4, ["bicubic"], as_hr=True, degradation="realesrgan", seed=4)
    assert other[1][1]["psnr"] != psnr["bicubic"]  # another seed, another draw
    with pytest.raises(AnyresError, match="--as-hr"):
        make_comparison(hr, 4, ["bicubic"], degradation="realesrgan")


def test_grayscale_and_non_integer_scale():
    hr = smooth(47, 53, channels=1)
    img, records = make_comparison(hr, 2.5, ["lanczos"], as_hr=True)
    assert img.mode == "RGB"
    assert records[1]["psnr"] > records[0]["psnr"]
    hr_c, lr = make_lr(hr, 2.5)
    sr = resize(lr, size=hr_c.shape[-2:], mode="bicubic")
    assert records[1]["psnr"] == pytest.approx(measure(sr, hr_c, 2.5).psnr, abs=1e-9)
    a = np.asarray(img)
    assert (a[..., 0] == a[..., 1]).all() and (a[..., 1] == a[..., 2]).all()


@pytest.mark.parametrize(
    "crop",
    [(90, 0, 20, 20), (0, 0, 0, 10), (-1, 0, 10, 10), (0, 70, 10, 11), (0, 0, 101, 80), (1.5, 0, 10, 10), (1, 2, 3)],
)
def test_invalid_crop(crop):
    with pytest.raises(AnyresError):
        make_comparison(smooth(40, 50), 2, [], crop=crop)


def test_bad_scale_and_model():
    with pytest.raises(AnyresError):
        make_comparison(smooth(20, 20), 0, [])
    with pytest.raises(AnyresError):
        make_comparison(smooth(20, 20), 0.5, [], as_hr=True)
    with pytest.raises(AnyresError):
        make_comparison(smooth(20, 20), 2, ["no-such-model"])
    with pytest.raises(AnyresError):  # too small to shave the border for PSNR
        make_comparison(smooth(6, 6), 3, [], as_hr=True)


@pytest.fixture
def cli():
    @click.group()
    def group():
        pass

    group.add_command(compare_command)
    return group


def test_cli_writes_png_and_refuses_overwrite(tmp_path, cli):
    src = tmp_path / "lr.png"
    write_image(src, smooth(60, 80))  # x2 output 120x160; as HR 60x80: the crop fits both
    out = tmp_path / "cmp.png"
    runner = CliRunner()
    args = ["compare", str(src), "--scale", "2", "--models", "bicubic,lanczos", "--crop", "8,4,64,48", "-o", str(out)]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    lines = [line.split() for line in result.stdout.strip().splitlines()]
    assert [line[0] for line in lines] == ["nearest", "bicubic", "lanczos"]
    x, _meta = read_image(out)
    assert x.shape[1] == 3 and x.shape[-1] == 3 * 64 + 2 * GAP and x.shape[-2] > 48
    again = runner.invoke(cli, args)
    assert again.exit_code != 0
    assert isinstance(again.exception, AnyresError)
    result = runner.invoke(cli, args + ["--overwrite", "--as-hr"])
    assert result.exit_code == 0, result.output
    lines = [line.split() for line in result.stdout.strip().splitlines()]
    assert [line[0] for line in lines] == ["nearest", "bicubic", "lanczos", "HR"]
    assert float(lines[1][1]) > float(lines[0][1])
    x, _meta = read_image(out)
    assert x.shape[-1] == 4 * 64 + 3 * GAP


@pytest.mark.parametrize(
    "extra", [["--crop", "1,2,3"], ["--crop", "0,0,500,10"], ["--scale", "-1"], ["--models", "nope"]]
)
def test_cli_user_errors(tmp_path, cli, extra):
    src = tmp_path / "lr.png"
    write_image(src, smooth(30, 40))
    out = tmp_path / "cmp.png"
    args = ["compare", str(src), "--scale", "2", "--models", "lanczos", "-o", str(out)] + extra
    result = CliRunner().invoke(cli, args)
    assert result.exit_code != 0
    assert isinstance(result.exception, AnyresError)
    assert not out.exists()


def test_cli_rejects_non_png(tmp_path, cli):
    src = tmp_path / "lr.png"
    write_image(src, smooth(30, 40))
    result = CliRunner().invoke(cli, ["compare", str(src), "--scale", "2", "-o", str(tmp_path / "x.jpg")])
    assert isinstance(result.exception, AnyresError)
