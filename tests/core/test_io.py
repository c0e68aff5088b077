"""Tests for anyres.io: every image here is generated in tmp_path and kept tiny (17x23) so the file runs fast."""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import numpy as np
import png
import pytest
import tifffile
import torch
from PIL import Image, ImageCms, ImageFile, ImageOps

try:
    import anyres.io  # noqa: F401
except ImportError:  # running from a checkout that is not pip-installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from anyres.errors import AnyresError, ImageReadError, ImageWriteError
from anyres.io import IMAGE_EXTENSIONS, ImageMeta, check_not_input, list_images, read_image, write_image
from anyres.ops.color import from_rgb_gray, to_rgb

H, W = 17, 23


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def u8(rng, *shape):
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


def u16(rng, *shape):
    a = rng.integers(0, 65536, size=shape, dtype=np.uint16)
    a.flat[:2] = (0, 65535)  # make sure both extremes are exercised
    return a


def hwc(x: torch.Tensor, top: int) -> np.ndarray:
    """(1, C, H, W) float tensor -> (H, W, C) integers, as the file would store them."""
    return (x[0] * top).round().to(torch.int64).permute(1, 2, 0).numpy()


def pil_array(path) -> np.ndarray:
    with Image.open(path) as img:
        a = np.asarray(img)
    return a[..., None] if a.ndim == 2 else a


def srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def write_png16(path, a: np.ndarray) -> None:
    """Write an (H, W, C) uint16 array as a 16-bit PNG with pypng (Pillow cannot)."""
    h, w, c = a.shape
    writer = png.Writer(w, h, greyscale=c <= 2, alpha=c in (2, 4), bitdepth=16)
    with open(path, "wb") as f:
        writer.write(f, a.reshape(h, -1).tolist())


# ------------------------------------------------------------------------------------------- 8-bit modes


@pytest.mark.parametrize(
    "mode, channels, gray, has_alpha",
    [("RGB", 3, False, False), ("L", 1, True, False), ("RGBA", 3, False, True), ("LA", 1, True, True)],
)
def test_8bit_modes_round_trip_exactly(tmp_path, rng, mode, channels, gray, has_alpha):
    a = u8(rng, H, W, len(mode))
    src = tmp_path / "src.png"
    Image.fromarray(a[..., 0] if len(mode) == 1 else a).save(src)
    x, meta = read_image(src)

    assert x.dtype == torch.float32 and x.shape == (1, channels, H, W)
    assert (meta.mode, meta.bit_depth, meta.gray, meta.format) == (mode, 8, gray, "PNG")
    np.testing.assert_array_equal(hwc(x, 255), a[..., :channels])
    if has_alpha:
        assert meta.alpha.shape == (1, 1, H, W) and meta.alpha.dtype == torch.float32
        np.testing.assert_array_equal(hwc(meta.alpha, 255)[..., 0], a[..., -1])
    else:
        assert meta.alpha is None

    out = write_image(tmp_path / "out.png", x, meta)
    with Image.open(out) as img:
        assert img.mode == mode
    np.testing.assert_array_equal(pil_array(out), a.reshape(H, W, -1))


@pytest.mark.parametrize("with_transparency", [False, True])
def test_palette_becomes_rgb_with_palette_colours(tmp_path, rng, with_transparency):
    palette = np.array([[255, 0, 0], [0, 128, 255], [10, 20, 30], [200, 200, 0]], dtype=np.uint8)
    index = rng.integers(0, 4, size=(H, W), dtype=np.uint8)
    img = Image.frombytes("P", (W, H), index.tobytes())
    img.putpalette(palette.flatten().tolist())
    src = tmp_path / "pal.png"
    img.save(src, transparency=2) if with_transparency else img.save(src)

    x, meta = read_image(src)
    assert meta.mode == "P" and not meta.gray and x.shape == (1, 3, H, W)
    np.testing.assert_array_equal(hwc(x, 255), palette[index])
    if with_transparency:
        np.testing.assert_array_equal(hwc(meta.alpha, 255)[..., 0], np.where(index == 2, 0, 255))
    else:
        assert meta.alpha is None


def test_cmyk_becomes_rgb_like_pillow(tmp_path, rng):
    src = tmp_path / "cmyk.tif"
    Image.frombytes("CMYK", (W, H), u8(rng, H, W, 4).tobytes()).save(src)
    x, meta = read_image(src)
    assert meta.mode == "CMYK" and x.shape == (1, 3, H, W)
    with Image.open(src) as img:
        expected = np.asarray(img.convert("RGB"))
    np.testing.assert_array_equal(hwc(x, 255), expected)


def test_bilevel_becomes_gray(tmp_path, rng):
    bits = rng.integers(0, 2, size=(H, W)).astype(bool)
    src = tmp_path / "bw.png"
    Image.fromarray(bits).save(src)
    x, meta = read_image(src)
    assert meta.mode == "1" and meta.gray and x.shape == (1, 1, H, W)
    np.testing.assert_array_equal(x[0, 0].numpy(), bits.astype(np.float32))


# ------------------------------------------------------------------------------------------- 16 bit


def test_16bit_gray_png_exact(tmp_path, rng):
    a = u16(rng, H, W)
    src = tmp_path / "g16.png"
    Image.fromarray(a).save(src)
    x, meta = read_image(src)
    assert (meta.bit_depth, meta.gray, x.shape) == (16, True, (1, 1, H, W))
    assert torch.equal(x[0, 0], torch.from_numpy(a.astype(np.float32)) / 65535)

    out = write_image(tmp_path / "out.png", x, meta)
    with Image.open(out) as img:
        assert img.mode.startswith("I;16")
        back = np.asarray(img).astype(np.uint16)
    np.testing.assert_array_equal(back, a)


@pytest.mark.parametrize("channels", [3, 4, 2])
def test_16bit_colour_png_exact_via_pypng(tmp_path, rng, channels):
    a = u16(rng, H, W, channels)
    src = tmp_path / "c16.png"
    write_png16(src, a)
    x, meta = read_image(src)
    colour = 1 if channels == 2 else 3
    assert meta.bit_depth == 16 and x.shape == (1, colour, H, W) and meta.gray == (channels == 2)
    assert torch.equal(x[0], torch.from_numpy(a[..., :colour].transpose(2, 0, 1).astype(np.float32)) / 65535)
    if channels in (2, 4):
        np.testing.assert_array_equal(hwc(meta.alpha, 65535)[..., 0], a[..., -1])

    out = write_image(tmp_path / "out.png", x, meta)
    _, _, rows, info = png.Reader(filename=str(out)).asDirect()
    assert info["bitdepth"] == 16 and info["planes"] == channels
    np.testing.assert_array_equal(np.array([list(r) for r in rows], dtype=np.uint16).reshape(a.shape), a)


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_16bit_tiff_exact_via_tifffile(tmp_path, rng, channels):
    a = u16(rng, H, W, channels)
    src = tmp_path / "t16.tif"
    tifffile.imwrite(
        src,
        a[..., 0] if channels == 1 else a,
        photometric="minisblack" if channels == 1 else "rgb",
        extrasamples=["unassalpha"] if channels == 4 else None,
    )
    x, meta = read_image(src)
    assert meta.bit_depth == 16 and meta.format == "TIFF" and x.shape[1] == min(channels, 3)
    np.testing.assert_array_equal(hwc(x, 65535), a[..., :3])

    out = write_image(tmp_path / "out.tif", x, meta)
    np.testing.assert_array_equal(tifffile.imread(out).reshape(a.shape), a)


def test_float_tiff_rounding_is_clipped_and_float_comes_back_as_float(tmp_path, rng):
    a = rng.random((H, W, 3), dtype=np.float32) * 1.0008 - 0.0004  # rounding slack around [0, 1]
    src = tmp_path / "f.tif"
    tifffile.imwrite(src, a, photometric="rgb")
    x, meta = read_image(src)
    assert meta.mode == "RGB;F" and meta.bit_depth == 32 and x.shape == (1, 3, H, W)
    assert torch.equal(x[0], torch.from_numpy(np.clip(a, 0, 1).transpose(2, 0, 1)))
    out = write_image(tmp_path / "g.tif", x, meta)
    back = tifffile.imread(out)
    assert back.dtype == np.float32 and np.array_equal(back, np.clip(a, 0, 1))
    png16, _ = read_image(write_image(tmp_path / "g.png", x, meta))  # PNG has no float: 16 bit
    assert (png16 - x).abs().max() <= 0.5 / 65535 + 1e-7


@pytest.mark.parametrize("scale", [255.0, -1.0])
def test_float_tiff_outside_unit_range_is_refused(tmp_path, rng, scale):
    tifffile.imwrite(tmp_path / "f.tif", rng.random((H, W, 3), dtype=np.float32) * scale, photometric="rgb")
    with pytest.raises(ImageReadError, match=r"float samples span .* rescale it"):
        read_image(tmp_path / "f.tif")


def test_multi_frame_inputs_are_refused_not_cut(tmp_path, rng):
    frames = [Image.fromarray(u8(rng, H, W, 3)) for _ in range(3)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    tifffile.imwrite(tmp_path / "p.tif", rng.random((2, H, W), dtype=np.float32))  # two float pages
    for name, match in (("a.gif", "it has 3 frames"), ("p.tif", "it has 2 pages")):
        with pytest.raises(ImageReadError, match=match):
            read_image(tmp_path / name)


# ------------------------------------------------------------------------------------------- formats


@pytest.mark.parametrize("ext", [".png", ".tif", ".tiff", ".bmp", ".webp"])
@pytest.mark.parametrize("channels", [1, 3])
def test_lossless_formats_round_trip_exactly(tmp_path, rng, ext, channels):
    a = u8(rng, H, W, channels)
    x = torch.from_numpy(a.transpose(2, 0, 1).astype(np.float32))[None] / 255
    out = write_image(tmp_path / f"x{ext}", x, quality=100)  # WebP quality 100 = lossless
    y, meta = read_image(out)
    if ext == ".webp" and channels == 1:  # WebP has no gray format: it comes back as equal RGB channels
        y = y[:, :1]
    np.testing.assert_array_equal(hwc(y, 255), a)
    assert meta.gray == (channels == 1 and ext != ".webp")


def test_jpeg_lower_quality_means_smaller_file_and_bigger_error(tmp_path, rng):
    yy, xx = np.mgrid[0:64, 0:64] / 63.0
    smooth = np.stack([xx, yy, (xx + yy) / 2]) + rng.normal(0, 0.03, (3, 64, 64))
    x = torch.from_numpy(smooth.clip(0, 1).astype(np.float32))[None]
    results = {}
    for q in (30, 95):
        out = write_image(tmp_path / f"q{q}.jpg", x, quality=q)
        y, meta = read_image(out)
        assert meta.format == "JPEG" and y.shape == x.shape
        results[q] = (out.stat().st_size, (y - x).abs().mean().item())
    assert results[30][0] < results[95][0]
    assert results[30][1] > results[95][1]
    assert results[95][1] < 0.03


def test_webp_lossy_keeps_alpha_and_is_close(tmp_path, rng):
    yy, xx = np.mgrid[0:H, 0:W]
    x = torch.from_numpy(np.stack([xx / W, yy / H, xx * 0 + 0.5]).astype(np.float32))[None]
    alpha = torch.from_numpy(u8(rng, H, W).astype(np.float32) / 255)[None, None]
    y, meta = read_image(write_image(tmp_path / "x.webp", x, alpha=alpha, quality=90))
    assert (y - x).abs().mean() < 0.05
    assert meta.alpha is not None and meta.alpha.shape == (1, 1, H, W)


def test_alpha_dropped_for_jpeg_and_bmp(tmp_path, rng):
    x = torch.rand(1, 3, H, W)
    meta = ImageMeta(mode="RGBA", alpha=torch.rand(1, 1, H + 5, W))  # size mismatch irrelevant: alpha is dropped
    for ext in (".jpg", ".bmp"):
        out = write_image(tmp_path / f"x{ext}", x, meta)
        with Image.open(out) as img:
            assert img.mode == "RGB"


def test_meta_alpha_of_wrong_size_is_an_error_where_alpha_is_kept(tmp_path):
    meta = ImageMeta(mode="RGBA", alpha=torch.rand(1, 1, H, W))
    with pytest.raises(ValueError, match="resize the alpha"):
        write_image(tmp_path / "x.png", torch.rand(1, 3, 2 * H, 2 * W), meta)
    assert not (tmp_path / "x.png").exists()
    # an explicit alpha of the right size overrides meta.alpha
    alpha = torch.zeros(1, 1, 2 * H, 2 * W)
    _, m = read_image(write_image(tmp_path / "x.png", torch.rand(1, 3, 2 * H, 2 * W), meta, alpha=alpha))
    assert torch.equal(m.alpha, alpha)


def test_write_rejects_bad_tensors_and_extensions(tmp_path):
    with pytest.raises(ValueError, match="NaN"):
        write_image(tmp_path / "x.png", torch.full((1, 3, 4, 4), float("nan")))
    with pytest.raises(ValueError, match="channels"):
        write_image(tmp_path / "x.png", torch.rand(1, 2, 4, 4))
    with pytest.raises(ImageWriteError, match="extension") as err:
        write_image(tmp_path / "x.gif", torch.rand(1, 3, 4, 4))
    assert "x.gif" in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_values_are_clamped_and_rounded_to_nearest(tmp_path):
    x = torch.tensor([-0.5, 0.0, 0.4 / 255, 0.6 / 255, 1.0, 7.0]).view(1, 1, 1, 6)
    out = write_image(tmp_path / "x.png", x, bit_depth=8)
    np.testing.assert_array_equal(pil_array(out)[0, :, 0], [0, 0, 0, 1, 255, 255])


def test_chw_input_and_missing_parent_dirs(tmp_path):
    out = write_image(tmp_path / "a" / "b" / "x.png", torch.rand(3, H, W))
    assert out == tmp_path / "a" / "b" / "x.png" and pil_array(out).shape == (H, W, 3)


# ------------------------------------------------------------------------------------------- metadata


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_applied_to_pixels_and_alpha(tmp_path, rng, orientation):
    a = u8(rng, H, W, 4)
    img = Image.fromarray(a)
    exif = img.getexif()
    exif[0x0112] = orientation
    src = tmp_path / "o.png"
    img.save(src, exif=exif)

    x, meta = read_image(src)
    with Image.open(src) as im:
        expected = np.asarray(ImageOps.exif_transpose(im))
    np.testing.assert_array_equal(hwc(x, 255), expected[..., :3])
    np.testing.assert_array_equal(hwc(meta.alpha, 255)[..., 0], expected[..., 3])
    if orientation == 6:  # 6 = rotate 90 degrees clockwise: the result is W x H
        assert x.shape == (1, 3, W, H)
        np.testing.assert_array_equal(expected, np.rot90(a, -1))


def test_exif_orientation_in_jpeg(tmp_path, rng):
    img = Image.fromarray(u8(rng, H, W, 3))
    exif = img.getexif()
    exif[0x0112] = 6
    src = tmp_path / "o.jpg"
    img.save(src, exif=exif, quality=95)
    x, _ = read_image(src)
    with Image.open(src) as im:
        decoded = np.asarray(im.convert("RGB"))
    assert x.shape == (1, 3, W, H)
    np.testing.assert_array_equal(hwc(x, 255), np.rot90(decoded, -1))


@pytest.mark.parametrize("src_ext, dst_ext", [(".png", ".png"), (".png", ".jpg"), (".jpg", ".webp"), (".png", ".tif")])
def test_icc_profile_carried(tmp_path, rng, src_ext, dst_ext):
    icc = srgb_icc()
    src = tmp_path / f"src{src_ext}"
    Image.fromarray(u8(rng, H, W, 3)).save(src, icc_profile=icc)
    x, meta = read_image(src)
    assert meta.icc_profile == icc
    out = write_image(tmp_path / f"out{dst_ext}", x, meta)
    with Image.open(out) as img:
        assert img.info.get("icc_profile") == icc
    assert read_image(out)[1].icc_profile == icc


def test_rgb_icc_profile_not_written_into_gray_file(tmp_path):
    meta = ImageMeta(icc_profile=srgb_icc())
    out = write_image(tmp_path / "g.png", torch.rand(1, 1, H, W), meta)
    with Image.open(out) as img:
        assert img.mode == "L" and "icc_profile" not in img.info


def test_icc_profile_carried_in_16bit_png(tmp_path, rng):
    icc = srgb_icc()
    meta = ImageMeta(mode="RGB;16", bit_depth=16, icc_profile=icc)
    out = write_image(tmp_path / "x.png", torch.rand(1, 3, H, W), meta)
    with Image.open(out) as img:
        assert img.info.get("icc_profile") == icc
    assert read_image(out)[1].icc_profile == icc


def test_dpi_carried(tmp_path, rng):
    src = tmp_path / "d.png"
    Image.fromarray(u8(rng, H, W, 3)).save(src, dpi=(300, 300))
    x, meta = read_image(src)
    assert meta.dpi is not None and round(meta.dpi[0]) == 300
    out = write_image(tmp_path / "o.jpg", x, meta)
    with Image.open(out) as img:
        assert tuple(round(v) for v in img.info["dpi"]) == (300, 300)


def test_gray_comes_back_gray(tmp_path, rng):
    src = tmp_path / "g.png"
    Image.fromarray(u8(rng, H, W)).save(src)
    x, meta = read_image(src)
    rgb = to_rgb(x) * torch.tensor([1.0, 0.9, 0.8]).view(1, 3, 1, 1)  # e.g. a colour model's output
    out = write_image(tmp_path / "out.png", rgb, meta)
    with Image.open(out) as img:
        assert img.mode == "L"
    luma = 0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]
    np.testing.assert_array_equal(pil_array(out)[..., 0], (luma[0] * 255).round().numpy().astype(np.uint8))
    # without meta, 3 channels stay colour and 1 channel is always gray
    with Image.open(write_image(tmp_path / "c.png", rgb)) as img:
        assert img.mode == "RGB"
    with Image.open(write_image(tmp_path / "g1.jpg", x)) as img:
        assert img.mode == "L"


def test_channel_helpers():
    g = torch.rand(2, 1, 5, 6)
    rgb = to_rgb(g)
    assert rgb.shape == (2, 3, 5, 6) and torch.equal(rgb[:, 2], g[:, 0])
    assert torch.allclose(from_rgb_gray(rgb), g, atol=1e-6)  # weights sum to 1
    c = torch.rand(2, 3, 5, 6)
    assert to_rgb(c) is c and from_rgb_gray(g) is g
    expected = 0.299 * c[:, 0] + 0.587 * c[:, 1] + 0.114 * c[:, 2]
    assert torch.allclose(from_rgb_gray(c)[:, 0], expected, atol=1e-6)
    with pytest.raises(ValueError):
        to_rgb(torch.rand(1, 2, 3, 3))


# ------------------------------------------------------------------------------------------- safe writing


def _failing_save(exc):
    def save(self, fp, *args, **kwargs):
        fp.write(b"half an image")
        raise exc

    return save


def _leftovers(d: Path):
    return [p.name for p in d.iterdir() if p.name.endswith(".tmp") or p.name.startswith(".")]


def test_failed_encode_leaves_nothing_behind(tmp_path, monkeypatch):
    monkeypatch.setattr(Image.Image, "save", _failing_save(OSError("disk full")))
    with pytest.raises(ImageWriteError, match="disk full"):
        write_image(tmp_path / "x.png", torch.rand(1, 3, H, W))
    monkeypatch.setattr(Image.Image, "save", _failing_save(RuntimeError("encoder bug")))
    with pytest.raises(RuntimeError, match="encoder bug"):
        write_image(tmp_path / "x.jpg", torch.rand(1, 3, H, W))
    assert list(tmp_path.iterdir()) == []


def test_failed_encode_keeps_existing_target(tmp_path, monkeypatch):
    target = tmp_path / "x.png"
    target.write_bytes(b"precious")
    monkeypatch.setattr(Image.Image, "save", _failing_save(OSError("boom")))
    with pytest.raises(ImageWriteError):
        write_image(target, torch.rand(1, 3, H, W), overwrite=True)
    assert target.read_bytes() == b"precious" and _leftovers(tmp_path) == []


def test_failed_tiff_encode_leaves_nothing_behind(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise ValueError("tiff encoder failed")

    monkeypatch.setattr(tifffile, "imwrite", boom)
    with pytest.raises(ImageWriteError, match="tiff encoder failed"):
        write_image(tmp_path / "x.tif", torch.rand(1, 3, H, W))
    assert list(tmp_path.iterdir()) == []


def test_successful_write_leaves_no_temp_file_and_normal_permissions(tmp_path):
    out = write_image(tmp_path / "x.png", torch.rand(1, 3, H, W))
    assert _leftovers(tmp_path) == []
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


def test_existing_output_needs_overwrite(tmp_path):
    target = tmp_path / "x.png"
    target.write_bytes(b"old")
    with pytest.raises(ImageWriteError, match="--overwrite") as err:
        write_image(target, torch.rand(1, 3, H, W))
    assert "x.png" in str(err.value) and target.read_bytes() == b"old"
    write_image(target, torch.zeros(1, 3, H, W), overwrite=True)
    assert pil_array(target).shape == (H, W, 3) and pil_array(target).max() == 0
    assert _leftovers(tmp_path) == []


def test_check_not_input(tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    inp = tmp_path / "sub" / "in.png"
    inp.write_bytes(b"x")
    with pytest.raises(ImageWriteError, match="never overwritten"):
        check_not_input(inp, [inp])
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ImageWriteError):
        check_not_input("sub/../sub/in.png", [str(inp)])
    with pytest.raises(ImageWriteError):
        check_not_input(inp, "./sub/in.png")  # a single path is accepted too
    link = tmp_path / "link.png"
    link.symlink_to(inp)
    with pytest.raises(ImageWriteError):
        check_not_input(link, [inp])
    check_not_input(tmp_path / "sub" / "out.png", [inp])  # different (and not yet existing) file: fine


# ------------------------------------------------------------------------------------------- bomb guard


def test_bomb_guard(tmp_path, rng, monkeypatch):
    src = tmp_path / "big.png"
    Image.fromarray(u8(rng, H, W, 3)).save(src)
    monkeypatch.delenv("ANYRES_MAX_PIXELS", raising=False)
    with pytest.raises(ImageReadError) as err:
        read_image(src, max_pixels=100)
    msg = str(err.value)
    assert "big.png" in msg and f"{W}x{H}" in msg and "limit of 100" in msg and "--max-pixels" in msg
    assert "ANYRES_MAX_PIXELS" in msg and "\n" not in msg

    monkeypatch.setenv("ANYRES_MAX_PIXELS", "100")
    with pytest.raises(ImageReadError, match="limit"):
        read_image(src)
    monkeypatch.setenv("ANYRES_MAX_PIXELS", str(H * W))
    assert read_image(src)[0].shape == (1, 3, H, W)
    assert read_image(src, max_pixels=0)[0].shape == (1, 3, H, W)  # 0 disables the check
    monkeypatch.setenv("ANYRES_MAX_PIXELS", "lots")
    with pytest.raises(AnyresError, match="ANYRES_MAX_PIXELS"):
        read_image(src)


def test_bomb_guard_runs_before_decoding(tmp_path, rng, monkeypatch):
    src = tmp_path / "big.png"
    Image.fromarray(u8(rng, H, W, 3)).save(src)

    def no_decode(self):
        raise AssertionError("decoded before the size check")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decode)
    with pytest.raises(ImageReadError, match="limit"):
        read_image(src, max_pixels=10)


def test_bomb_guard_for_tifffile_path(tmp_path, rng):
    src = tmp_path / "big.tif"
    tifffile.imwrite(src, u16(rng, H, W, 3), photometric="rgb")
    with pytest.raises(ImageReadError, match="limit"):
        read_image(src, max_pixels=10)


def test_pillow_own_bomb_check_is_replaced_by_ours(tmp_path, rng, monkeypatch):
    src = tmp_path / "x.png"
    Image.fromarray(u8(rng, H, W, 3)).save(src)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10)  # Pillow alone would raise DecompressionBombError
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not even a DecompressionBombWarning
        x, _ = read_image(src, max_pixels=10_000)
    assert x.shape == (1, 3, H, W)
    assert Image.MAX_IMAGE_PIXELS == 10  # restored


# ------------------------------------------------------------------------------------------- bad inputs


def _make_bad(kind: str, tmp_path: Path, rng) -> Path:
    good = tmp_path / "good.png"
    Image.fromarray(u8(rng, 64, 64, 3)).save(good)
    if kind == "missing":
        return tmp_path / "missing.png"
    if kind == "directory":
        (tmp_path / "adir.png").mkdir()
        return tmp_path / "adir.png"
    if kind == "text":
        p = tmp_path / "notes.png"
        p.write_text("this is not an image\nsecond line\n")
        return p
    if kind == "truncated_png":
        p = tmp_path / "half.png"
        data = good.read_bytes()
        p.write_bytes(data[: len(data) // 2])
        return p
    if kind == "truncated_png16":
        write_png16(tmp_path / "g16.png", u16(rng, 64, 64, 3))
        data = (tmp_path / "g16.png").read_bytes()
        p = tmp_path / "half16.png"
        p.write_bytes(data[: len(data) // 2])
        return p
    if kind == "truncated_jpeg":
        Image.fromarray(u8(rng, 64, 64, 3)).save(tmp_path / "g.jpg")
        data = (tmp_path / "g.jpg").read_bytes()
        p = tmp_path / "half.jpg"
        p.write_bytes(data[: len(data) // 2])
        return p
    if kind == "empty":
        p = tmp_path / "empty.png"
        p.write_bytes(b"")
        return p
    if kind == "int32_tiff":
        p = tmp_path / "int32.tif"
        Image.fromarray(rng.integers(0, 2**31 - 1, size=(H, W), dtype=np.int32)).save(p)
        return p
    if kind == "uint32_tiff":
        p = tmp_path / "uint32.tif"
        tifffile.imwrite(p, rng.integers(0, 2**32 - 1, size=(H, W), dtype=np.uint32))
        return p
    if kind == "nan_tiff":
        p = tmp_path / "nan.tif"
        tifffile.imwrite(p, np.full((H, W), np.nan, dtype=np.float32))
        return p
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind, reason",
    [
        ("missing", "no such file"),
        ("directory", "directory"),
        ("text", "not an image"),
        ("truncated_png", "truncated"),
        ("truncated_png16", "truncated"),
        ("truncated_jpeg", "truncated"),
        ("empty", "empty"),
        ("int32_tiff", "unsupported"),
        ("uint32_tiff", "unsupported"),
        ("nan_tiff", "NaN"),
    ],
)
def test_bad_inputs_raise_one_line_error_naming_the_file(tmp_path, rng, kind, reason):
    bad = _make_bad(kind, tmp_path, rng)
    with pytest.raises(ImageReadError) as err:
        read_image(bad)
    msg = str(err.value)
    assert bad.name in msg and "\n" not in msg and reason in msg


# ------------------------------------------------------------------------------------------- listing


def test_list_images(tmp_path):
    for name in ("b.png", "a.JPG", "c.tiff", "notes.txt", ".hidden.png", "d.webp"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "sub.png").mkdir()
    (tmp_path / "sub.png" / "e.png").write_bytes(b"")
    assert [p.name for p in list_images(tmp_path)] == ["a.JPG", "b.png", "c.tiff", "d.webp"]
    assert list_images(tmp_path / "notes.txt") == [tmp_path / "notes.txt"]
    with pytest.raises(ImageReadError, match="nothere"):
        list_images(tmp_path / "nothere")
    assert set(IMAGE_EXTENSIONS) == {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp"}
