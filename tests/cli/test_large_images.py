"""Large photos in bounded memory through the command line: ``anyres enhance`` in tiles and bands (equal to
the one-pass output), the ``--explain`` refusal, ``estimate-kernel`` on a bounded crop, and the readers and
writers that keep 8-bit samples (:func:`anyres.io.read_pixels`, :class:`anyres.io.Canvas`)."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import anyres.cli.enhance as enhance_cli
import anyres.enhancement.blocks as blocks
from anyres.cli import main
from anyres.cli.estimate_kernel import working_copy
from anyres.degrade.learned.kernelgan import estimate_kernel
from anyres.enhancement.deeplpf import DeepLPF, DeepLPFConfig
from anyres.hub import save_network
from anyres.io import Canvas, ImageMeta, read_image, read_pixels, write_image

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def deeplpf_dir(tmp_path):
    torch.manual_seed(3)
    net = DeepLPF(DeepLPFConfig(width=2, features=4, head_size=8, init="default"))
    with torch.no_grad():  # deep paths that matter (the default init shrinks them to rounding)
        for m in net.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.weight.normal_(0, 1.5 / m.weight[0].numel() ** 0.5)
    return save_network(net, tmp_path / "dlpf")


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _photo(path, w, h, mode="RGB", seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 4), dtype=np.uint8)
    img = Image.fromarray(base, "RGBA").resize((w, h), Image.BICUBIC).convert(mode)
    img.save(path)
    return path


def _cut_everything(monkeypatch):
    """The CLI cuts every image: tiles of one pooling step, bands of 5 rows."""
    real = blocks.Blocking
    monkeypatch.setattr(blocks, "Blocking", lambda: real(one_pass_pixels=0, tile=0, band=5))


def _close(a, b):
    """8-bit outputs of the tiled and one-pass paths: equal up to a rounding flip in a few pixels."""
    a, b = np.asarray(Image.open(a)).astype(int), np.asarray(Image.open(b)).astype(int)
    assert a.shape == b.shape
    diff = np.abs(a - b)
    assert diff.max() <= 1 and (diff > 0).mean() < 0.002, (diff.max(), (diff > 0).mean())
    return a, b


@pytest.mark.parametrize("mode", ["RGBA", "L"])
def test_enhance_in_tiles_and_bands_writes_the_one_pass_result(tmp_path, deeplpf_dir, monkeypatch, mode):
    src = _photo(tmp_path / f"in_{mode}.png", 150, 131, mode)
    for extra in ([], ["--working-size", 60]):
        name = "_".join(map(str, extra)) or "full"
        res = _run("enhance", src, "-o", tmp_path / f"one_{name}.png", "--model", deeplpf_dir, *extra)
        assert res.exit_code == 0, res.output
        with monkeypatch.context() as m:
            _cut_everything(m)
            res = _run("enhance", src, "-o", tmp_path / f"cut_{name}.png", "--model", deeplpf_dir, *extra)
            assert res.exit_code == 0, res.output
        a, b = _close(tmp_path / f"one_{name}.png", tmp_path / f"cut_{name}.png")
        if mode == "RGBA":  # the alpha is copied, not recomputed
            assert np.array_equal(a[..., 3], np.asarray(Image.open(src))[..., 3]) and np.array_equal(
                a[..., 3], b[..., 3]
            )
        assert Image.open(tmp_path / f"cut_{name}.png").mode == mode


def test_explain_at_full_size_is_refused_above_its_limit_in_one_line(tmp_path, deeplpf_dir, monkeypatch):
    src = _photo(tmp_path / "in.png", 60, 40)
    monkeypatch.setattr(enhance_cli, "EXPLAIN_MAX_PIXELS", 1000)
    res = _run("enhance", src, "-o", tmp_path / "out.png", "--model", deeplpf_dir, "--explain")
    assert res.exit_code == 1 and "Traceback" not in res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("anyres: error:") and "--working-size" in lines[0]
    assert "60x40" in lines[0] and "GB" in lines[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dlpf", "in.png"]
    # At a working size the explanation is made there, and the result comes back at full size.
    res = _run("enhance", src, "-o", tmp_path / "out.png", "--model", deeplpf_dir, "--explain", "--working-size", 30)
    assert res.exit_code == 0, res.output
    assert Image.open(tmp_path / "out.png").size == (60, 40)
    assert json.loads((tmp_path / "in_filters.json").read_text())["fusion"] == "sum"


def test_estimate_kernel_is_unchanged_below_the_limit_and_crops_the_centre_above(tmp_path):
    src = _photo(tmp_path / "in.png", 200, 160, seed=4)
    res = _run("estimate-kernel", src, "-o", tmp_path / "k.npy", "--iters", 3, "--seed", 1)
    assert res.exit_code == 0, res.output
    img, _ = read_image(src)
    assert np.array_equal(np.load(tmp_path / "k.npy"), estimate_kernel(img, iters=3, seed=1).numpy())
    assert "crop" not in res.output

    res = _run("estimate-kernel", src, "-o", tmp_path / "c.npy", "--iters", 3, "--seed", 1, "--working-pixels", 10000)
    assert res.exit_code == 0, res.output
    assert "200x160 is 0.0 MP: KernelGAN learns from its central 112x88 crop" in res.stderr
    crop = img[..., 36:124, 44:156]  # 88 x 112, even offsets, centred
    assert np.array_equal(np.load(tmp_path / "c.npy"), estimate_kernel(crop, iters=3, seed=1).numpy())
    x, note = working_copy(read_pixels(src), 10000)
    assert torch.equal(x, crop) and note is not None
    assert working_copy(read_pixels(src), 0)[1] is None  # 0: the whole image

    res = _run("estimate-kernel", src, "--working-pixels", -1)
    assert res.exit_code == 1 and "--working-pixels must be >= 0" in res.output


def test_pixels_and_canvas_equal_read_image_and_write_image(tmp_path):
    torch.manual_seed(0)
    for ext in (".png", ".tif", ".jpg"):
        for depth in (8, 16):
            x, alpha = torch.rand(1, 3, 37, 53) * 1.2 - 0.1, torch.rand(1, 1, 37, 53)
            meta = ImageMeta(bit_depth=depth, alpha=alpha)
            whole = write_image(tmp_path / f"whole_{depth}{ext}", x, meta)
            canvas = Canvas(tmp_path / f"blocks_{depth}{ext}", (37, 53), meta)
            for top in range(0, 37, 10):
                for left in range(0, 53, 16):
                    canvas.put(top, left, x[..., top : top + 10, left : left + 16])
            assert canvas.write().read_bytes() == whole.read_bytes()
            img, read_meta = read_image(whole)
            pixels = read_pixels(whole)
            assert pixels.size == (37, 53) and pixels.channels == 3 and pixels.meta.alpha is None
            assert torch.equal(pixels.window(3, 20, 5, 40), img[..., 3:20, 5:40])
            if ext != ".jpg":
                assert pixels.has_alpha and torch.equal(pixels.alpha(3, 20, 5, 40), read_meta.alpha[..., 3:20, 5:40])
    canvas = Canvas(tmp_path / "c.png", (4, 4))
    with pytest.raises(ValueError, match="does not fit"):
        canvas.put(2, 0, torch.zeros(1, 3, 3, 4))
    with pytest.raises(ValueError, match="NaN"):
        canvas.put(0, 0, torch.full((1, 3, 4, 4), float("nan")))
