"""Fuzz the real CLI: over 200 malformed or unusual inputs across upscale, enhance, evaluate, degrade and
estimate-kernel, each run in its own process (forked from tests/fuzz/cli_server.py, which imported anyres once).

For every case: a bad input exits non-zero with exactly one ``anyres: error:`` line and no traceback; a good
input succeeds and writes its output; a failed case leaves no output file and no temporary file; no input
changes (sha256 before and after); no run takes over 60 s or grows past 2 GB resident. Kinds: corrupt,
truncated and empty files, every Pillow mode, 16-bit and float TIFFs (NaN, out of range), EXIF rotation,
non-ASCII names, decompression bombs, multi-frame files, absurd numbers, malformed replay records, read-only
and missing folders, colliding names, wrong models. The slow cases (KernelGAN runs) are marked ``slow``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from anyres.degrade import get_pipeline
from anyres.enhancement.unet import UNetEnhancer
from anyres.hub import save_network

HERE = Path(__file__).resolve().parent
MAX_SECONDS = 60
MAX_MB = 2048
# A folder nobody may write to, root included (chmod is no barrier to root, and CI runs as root).
READ_ONLY = "/proc/1"


@dataclass
class Case:
    id: str
    args: list[str]  # "{c}" -> corpus folder, "{o}" -> this case's output folder
    ok: bool  # True: must succeed; False: must fail with one error line
    outputs: list[str] = field(default_factory=list)  # files (under {o}) a success writes / a failure must not
    message: str = ""  # a fragment the error line must contain
    slow: bool = False


# ----------------------------------------------------------------------------------------------- corpus


def _png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG that declares ``width x height`` pixels (a decompression bomb by its header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _smooth(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.meshgrid(np.linspace(0, 1, h), np.linspace(0, 1, w), indexing="ij")
    chans = [np.sin(6 * xx * rng.uniform(0.5, 2) + 4 * yy * rng.uniform(0.5, 2) + rng.uniform(0, 6)) for _ in range(3)]
    return np.clip(np.stack(chans, -1) * 100 + 128, 0, 255).astype(np.uint8)


def build_corpus(c: Path) -> None:
    c.mkdir(parents=True, exist_ok=True)
    rgb = _smooth(40, 48)
    Image.fromarray(rgb).save(c / "good.png")
    Image.fromarray(rgb).save(c / "good.jpg", quality=90)
    Image.fromarray(_smooth(64, 64, 1)).save(c / "good64.png")
    Image.fromarray(rgb).save(c / "tiny_ok.bmp")
    Image.fromarray(rgb[:8, :8]).save(c / "tiny8.png")
    Image.fromarray(rgb[:1, :1]).save(c / "one_pixel.png")
    Image.fromarray(rgb).save(c / "héllo wörld ✓.png")
    Image.fromarray(rgb).save(c / "名前.png")
    # every Pillow mode anyres reads, and two it refuses
    img = Image.fromarray(rgb)
    for mode in ("1", "L", "LA", "P", "RGBA", "RGBX"):
        img.convert(mode).save(c / f"mode_{mode}.png" if mode != "RGBX" else c / "mode_RGBX.tif")
    img.convert("CMYK").save(c / "mode_CMYK.jpg")
    img.convert("YCbCr").save(c / "mode_YCbCr.jpg")
    img.convert("P").save(c / "palette_transparent.png", transparency=0)
    Image.fromarray(rgb[..., 0].astype(np.uint16) * 257).save(c / "mode_I16.png")
    Image.fromarray(rgb[..., 0].astype(np.int32) * 1000, mode="I").save(c / "mode_I32.tif")
    Image.fromarray(rgb[..., 0].astype(np.float32) / 255, mode="F").save(c / "mode_F_pil.tif")
    # 16-bit and float TIFFs
    tifffile.imwrite(c / "rgb16.tif", rgb.astype(np.uint16) * 257, photometric="rgb")
    tifffile.imwrite(c / "float01.tif", rgb.astype(np.float32) / 255, photometric="rgb")
    tifffile.imwrite(c / "float255.tif", rgb.astype(np.float32), photometric="rgb")
    nan = rgb.astype(np.float32) / 255
    nan[3, 4, 1] = np.nan
    tifffile.imwrite(c / "float_nan.tif", nan, photometric="rgb")
    tifffile.imwrite(c / "pages.tif", np.stack([rgb, rgb]), photometric="rgb")
    # EXIF rotation (orientation 6: rotate 90 degrees clockwise on display)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(rgb).save(c / "exif_rot6.jpg", exif=exif.tobytes())
    # formats read but not written
    img.save(c / "single.gif")
    frames = [Image.fromarray(_smooth(40, 48, s)) for s in range(3)]
    frames[0].save(c / "animated.gif", save_all=True, append_images=frames[1:])
    frames[0].save(c / "animated.webp", save_all=True, append_images=frames[1:])
    img.save(c / "p6.ppm")
    img.convert("L").save(c / "p5.pgm")
    img.save(c / "targa.tga")
    img.resize((32, 32)).save(c / "icon.ico")
    # broken files
    (c / "empty.png").write_bytes(b"")
    good = (c / "good.png").read_bytes()
    (c / "truncated.png").write_bytes(good[: len(good) // 2])
    jpg = (c / "good.jpg").read_bytes()
    (c / "truncated.jpg").write_bytes(jpg[: len(jpg) // 3])
    (c / "random.png").write_bytes(np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    (c / "text.jpg").write_text("this is not an image\n")
    (c / "png_named.jpg").write_bytes(good)  # a PNG with the wrong extension: read by content
    (c / "dir.png").mkdir()
    (c / "bomb.png").write_bytes(_png_header_only(30000, 30000))
    (c / "zero_width.png").write_bytes(_png_header_only(0, 10))
    # folders
    (c / "set").mkdir()
    for i in range(3):
        Image.fromarray(_smooth(36 + i, 40, i)).save(c / "set" / f"img{i}.png")
    (c / "set_bad").mkdir()
    shutil.copy(c / "set" / "img0.png", c / "set_bad" / "img0.png")
    shutil.copy(c / "truncated.png", c / "set_bad" / "broken.png")
    shutil.copy(c / "tiny8.png", c / "set_bad" / "tiny8.png")
    (c / "set_empty").mkdir()
    (c / "twins" / "a").mkdir(parents=True)
    (c / "twins" / "b").mkdir(parents=True)
    shutil.copy(c / "good.png", c / "twins" / "a" / "x.png")
    shutil.copy(c / "good64.png", c / "twins" / "b" / "x.png")
    # models
    save_network(UNetEnhancer(width=2, levels=2), c / "unet")
    (c / "not_a_model").mkdir()
    (c / "not_a_model" / "config.json").write_text('{"arch": "nothing"}')
    # replay records
    rec = get_pipeline("classical").sample(1, torch.Generator().manual_seed(1), scale=2.0, hr_size=(40, 48))[0]
    rec["noise"] = rec["noise"] or {"kind": "color", "level": 1.0, "seed": 1}
    base = {"pipeline": "classical", "scale": 2.0, "seed": 0, "config": None}

    def record_file(name: str, change) -> None:
        r = json.loads(json.dumps(rec))
        change(r)
        (c / f"rec_{name}.json").write_text(json.dumps({**base, "images": {"good.png": r}}))

    record_file("ok", lambda r: None)
    record_file("kernel_float", lambda r: r["blur"].update(size=7.5))
    record_file("kernel_huge", lambda r: r["blur"].update(size=100001))
    record_file("resize_huge", lambda r: r["resize"].update(size=[10**7, 10**7]))
    record_file("lr_size", lambda r: r.update(lr_size=[21, 24]))
    record_file("hr_size", lambda r: r.update(hr_size=[41, 48]))
    record_file("sigma_neg", lambda r: r["blur"].update(sigma=-1.0))
    record_file("seed_big", lambda r: r["noise"].update(seed=2**80))
    record_file("nan", lambda r: r["noise"].update(level=float("nan")))
    record_file("string", lambda r: r["blur"].update(size="eleven"))
    record_file("missing_step", lambda r: r.pop("resize"))
    record_file("record_list", lambda r: r.clear())
    (c / "rec_not_json.json").write_text("{not json")
    (c / "rec_no_images.json").write_text(json.dumps(base))
    (c / "rec_pipeline.json").write_text(json.dumps({**base, "pipeline": "nope", "images": {}}))
    (c / "rec_deep.json").write_text("[" * 200000 + "]" * 200000)
    (c / "rec_nested.json").write_text(json.dumps({**base, "images": {"good.png": {"a": [[[[[[[[1]]]]]]]]}}}))
    bsr = get_pipeline("bsrgan")
    for seed in range(300):
        r = bsr.sample(1, torch.Generator().manual_seed(seed), scale=2.0, hr_size=(40, 48))[0]
        if r.get("noise") and r["noise"].get("kind") == "correlated":
            r["noise"]["covariance"] = [[1.0, 2.0], [2.0, 1.0]]
            (c / "rec_cov.json").write_text(json.dumps({**base, "pipeline": "bsrgan", "images": {"good.png": r}}))
            break
    Image.fromarray(_smooth(96, 96, 2)).save(c / "good96.png")


# ------------------------------------------------------------------------------------------------ cases


def cases() -> list[Case]:
    out: list[Case] = []
    up = ["upscale", "--model", "bicubic", "--scale", "2"]
    en = ["enhance", "--model", "{c}/unet"]
    dg = ["degrade", "--pipeline", "classical", "--scale", "2"]
    commands = {"upscale": up, "enhance": en, "degrade": dg}

    def add(id: str, args: list[str], ok: bool, outputs=(), message="", slow=False) -> None:
        out.append(Case(id, list(args), ok, list(outputs), message, slow))

    readable = [
        "good.png", "good.jpg", "tiny_ok.bmp", "héllo wörld ✓.png", "名前.png", "mode_1.png", "mode_L.png",
        "mode_LA.png", "mode_P.png", "mode_RGBA.png", "mode_RGBX.tif", "mode_CMYK.jpg", "mode_YCbCr.jpg",
        "palette_transparent.png", "mode_I16.png", "rgb16.tif", "float01.tif", "mode_F_pil.tif", "exif_rot6.jpg", "single.gif",
        "p6.ppm", "p5.pgm", "targa.tga", "icon.ico", "png_named.jpg", "one_pixel.png", "tiny8.png",
    ]  # fmt: skip
    unreadable = {
        "empty.png": "empty", "truncated.png": "corrupt or truncated", "truncated.jpg": "corrupt or truncated",
        "random.png": "not an image", "text.jpg": "not an image", "dir.png": "no images", "missing.png": "no such",
        "bomb.png": "above the limit", "zero_width.png": "", "mode_I32.tif": "32-bit integer",
        "float255.tif": "rescale it", "float_nan.tif": "NaN", "pages.tif": "2 pages",
        "animated.gif": "3 frames", "animated.webp": "3 frames",
    }  # fmt: skip
    for name, base in commands.items():
        for f in readable:
            if name == "degrade" and f == "one_pixel.png":
                add(f"{name}-{f}", [*base, f"{{c}}/{f}", "--out-dir", "{o}"], False, message="at least 1")
                continue
            stem = Path(f).stem
            ext = Path(f).suffix if Path(f).suffix in (".png", ".jpg", ".tif", ".bmp") else ".png"
            ext = ".png" if name == "degrade" else ext
            add(f"{name}-{f}", [*base, f"{{c}}/{f}", "--out-dir", "{o}"], True, [f"{stem}{ext}"])
        for f, msg in unreadable.items():
            add(f"{name}-{f}", [*base, f"{{c}}/{f}", "--out-dir", "{o}"], False, message=msg)
        # outputs: the input itself, a read-only folder, a folder, an existing file, a bad extension, a long name
        add(f"{name}-o-is-input", [*base, "{c}/good.png", "-o", "{c}/good.png"], False, message="input")
        add(f"{name}-o-readonly", [*base, "{c}/good.png", "-o", "{ro}/x.png"], False, message="not writable")
        add(f"{name}-o-folder", [*base, "{c}/good.png", "-o", "{c}/set"], False)
        add(f"{name}-o-ext", [*base, "{c}/good.png", "-o", "{o}/x.xyz"], False, message="extension")
        add(f"{name}-o-long", [*base, "{c}/good.png", "-o", "{o}/" + "n" * 300 + ".png"], False)
        add(f"{name}-o-newdir", [*base, "{c}/good.png", "-o", "{o}/new/deeper/x.png"], True, ["new/deeper/x.png"])
        add(f"{name}-twins", [*base, "{c}/twins/a/x.png", "{c}/twins/b/x.png", "--out-dir", "{o}"], False)
        add(f"{name}-twins-recursive", [*base, "{c}/twins", "-r", "--out-dir", "{o}"], True, ["a/x.png", "b/x.png"])
        add(f"{name}-empty-folder", [*base, "{c}/set_empty", "--out-dir", "{o}"], False, message="no images")
        add(f"{name}-missing-folder", [*base, "{c}/nowhere/", "--out-dir", "{o}"], False)
        add(f"{name}-folder", [*base, "{c}/set", "--out-dir", "{o}"], True, ["img0.png", "img1.png", "img2.png"])
        add(f"{name}-threads-0", [*base, "{c}/good.png", "--out-dir", "{o}", "--threads", "0"], False)
        add(f"{name}-ext-bad", [*base, "{c}/good.png", "--out-dir", "{o}", "--ext", "gif"], False, message="--ext")
        add(f"{name}-suffix-slash", [*base, "{c}/good.png", "--suffix", "a/b"], False, message="separator")
    # upscale: absurd numbers
    for flag, value, msg in [
        ("--scale", "0", "positive"), ("--scale", "-2", "positive"), ("--scale", "nan", ""), ("--scale", "inf", ""),
        ("--scale", "1e9", "limit"), ("--scale", "1e4", "limit"), ("--scale", "1e-9", "at least 1 pixel"),
        ("--scale", "abc", "not a valid"), ("--size", "0x0", ""), ("--size", "99999x99999", "limit"),
        ("--size", "axb", ""), ("--size", "10", ""), ("--width", "0", ""), ("--width", "99999999", "limit"),
        ("--height", "-5", ""), ("--tile", "0", "tile"), ("--tile", "3", "tile"),
        ("--seed", str(2**70), ""), ("--max-output-pixels", "0", ""), ("--quality", "500", ""),
        ("--mode", "turbo", ""), ("--device", "tpu", "device"),
    ]:  # fmt: skip
        add(f"upscale{flag}={value}", ["upscale", "{c}/good.png", "--model", "bicubic", flag, value, "-o", "{o}/x.png"]
            + ([] if flag in ("--scale", "--size", "--width", "--height") else ["--scale", "2"]), False, message=msg)  # fmt: skip
    add("upscale-seed-negative", [*up, "{c}/good.png", "--seed", "-1", "-o", "{o}/x.png"], True, ["x.png"])
    add("upscale-two-sizes", [*up, "--width", "10", "{c}/good.png", "-o", "{o}/x.png"], False, message="exactly one")
    add("upscale-scale-0.5", ["upscale", "{c}/good.png", "--model", "bicubic", "--scale", "0.5", "-o", "{o}/x.png"],
        True, ["x.png"])  # fmt: skip
    add("upscale-liif", ["upscale", "{c}/good.png", "--model", "liif", "--scale", "2.5", "-o", "{o}/x.png"], True,
        ["x.png"])  # fmt: skip
    add("upscale-liif-tiled", ["upscale", "{c}/good64.png", "--model", "liif", "--scale", "1.5", "--tile", "16",
        "-o", "{o}/x.png"], True, ["x.png"])  # fmt: skip
    add("upscale-model-missing", [*up, "{c}/good.png", "--model", "nope", "-o", "{o}/x.png"], False, message="nope")
    add("upscale-model-enhancer", ["upscale", "{c}/good.png", "--scale", "2", "--model", "{c}/unet", "-o",
        "{o}/x.png"], False)  # fmt: skip
    add("upscale-model-broken", ["upscale", "{c}/good.png", "--scale", "2", "--model", "{c}/not_a_model", "-o",
        "{o}/x.png"], False)  # fmt: skip
    add("upscale-model-pth-garbage", ["upscale", "{c}/good.png", "--scale", "2", "--model", "{c}/text.jpg", "-o",
        "{o}/x.png"], False)  # fmt: skip
    add("upscale-blind-baseline", [*up, "{c}/good.png", "--blind", "-o", "{o}/x.png"], False, message="baseline")
    add("upscale-bomb-lifted", [*up, "{c}/bomb.png", "--max-pixels", "0", "-o", "{o}/x.png"], False)
    add("upscale-skip-existing", [*up, "{c}/set", "--out-dir", "{o}", "--skip-existing"], True,
        ["img0.png", "img1.png", "img2.png"])  # fmt: skip
    # enhance
    add("enhance-model-upscaler", ["enhance", "{c}/good.png", "--model", "bicubic", "-o", "{o}/x.png"], False)
    add("enhance-explain-unet", [*en, "{c}/good.png", "--explain", "-o", "{o}/x.png"], False, message="DeepLPF")
    add("enhance-working-size-0", [*en, "{c}/good.png", "--working-size", "0", "-o", "{o}/x.png"], False)
    add("enhance-working-size", [*en, "{c}/good64.png", "--working-size", "32", "-o", "{o}/x.png"], True, ["x.png"])
    add("enhance-resampler-alone", [*en, "{c}/good.png", "--resampler", "lmar", "-o", "{o}/x.png"], False)
    add("enhance-deeplpf", ["enhance", "{c}/good.png", "--model", "deeplpf-retouch", "--explain", "-o", "{o}/x.png"],
        True, ["x.png", "good_filters.json", "good_filters.png"])  # fmt: skip
    # degrade: numbers, replays
    for value in ("0.5", "0", "-1", "nan", "inf", "1e9", "abc"):
        add(f"degrade-scale={value}", ["degrade", "{c}/good.png", "--pipeline", "classical", "--scale", value, "-o",
            "{o}/x.png"], False)  # fmt: skip
    add("degrade-no-pipeline", ["degrade", "{c}/good.png", "--scale", "2", "-o", "{o}/x.png"], False)
    add("degrade-pipeline-bad", ["degrade", "{c}/good.png", "--pipeline", "nope", "--scale", "2"], False)
    add("degrade-seed-huge", [*dg, "{c}/good.png", "--seed", str(2**80), "-o", "{o}/x.png"], False)
    add("degrade-params-is-input", [*dg, "{c}/good.png", "-o", "{o}/x.png", "--params-out", "{c}/good.png"], False,
        message="input")  # fmt: skip
    add("degrade-params-readonly", [*dg, "{c}/good.png", "-o", "{o}/x.png", "--params-out", "{ro}/p.json"], False,
        message="not writable")  # fmt: skip
    add("degrade-params", [*dg, "{c}/set", "--out-dir", "{o}", "--params-out", "{o}/p.json"], True,
        ["img0.png", "p.json"])  # fmt: skip
    for p in ("bsrgan", "realesrgan"):
        add(f"degrade-{p}", ["degrade", "{c}/good.png", "--pipeline", p, "--scale", "3.5", "-o", "{o}/x.png"], True,
            ["x.png"])  # fmt: skip
    add("degrade-replay-ok", ["degrade", "{c}/good.png", "--replay", "{c}/rec_ok.json", "-o", "{o}/x.png"], True,
        ["x.png"])  # fmt: skip
    for name, msg in [
        ("kernel_float", "blur.size"), ("kernel_huge", "blur.size"), ("resize_huge", "resize.size"),
        ("lr_size", "lr_size"), ("hr_size", "HR size"), ("sigma_neg", "sigma"), ("seed_big", "seed"),
        ("nan", "level"), ("string", "blur.size"), ("missing_step", "invalid record"), ("record_list", ""),
        ("not_json", "cannot read"), ("no_images", "images"), ("pipeline", "unknown pipeline"),
        ("deep", "nested deeper"), ("nested", ""), ("cov", "positive definite"),
    ]:  # fmt: skip
        add(f"degrade-replay-{name}", ["degrade", "{c}/good.png", "--replay", f"{{c}}/rec_{name}.json", "-o",
            "{o}/x.png"], False, message=msg)  # fmt: skip
    add("degrade-replay-missing", ["degrade", "{c}/good.png", "--replay", "{c}/none.json"], False, message="no such")
    add("degrade-replay-scale-clash", ["degrade", "{c}/good.png", "--replay", "{c}/rec_ok.json", "--scale", "3"],
        False, message="disagrees")  # fmt: skip
    # evaluate
    ev = ["evaluate", "--model", "bicubic"]
    add("evaluate-set", [*ev, "--data", "{c}/set", "--scales", "2,3.5", "--json", "{o}/r.json"], True, ["r.json"])
    add("evaluate-bad-images", [*ev, "--data", "{c}/set_bad", "--scales", "2", "--json", "{o}/r.json"], False,
        ["r.json"], message="corrupt or truncated")  # fmt: skip
    add("evaluate-json-is-input", [*ev, "--data", "{c}/set", "--json", "{c}/set/img0.png"], False, message="input")
    add("evaluate-json-readonly", [*ev, "--data", "{c}/set", "--json", "{ro}/r.json"], False, message="writable")
    add("evaluate-save-readonly", [*ev, "--data", "{c}/set", "--save", "{ro}/sr"], False, message="writable")
    add("evaluate-missing", [*ev, "--data", "{c}/nowhere"], False, message="not a directory")
    add("evaluate-empty", [*ev, "--data", "{c}/set_empty"], False, message="no images")
    add("evaluate-file", [*ev, "--data", "{c}/good.png"], False)
    for value in ("0", "0.5", "abc", "nan", "1e9", "2,,3", ""):
        add(f"evaluate-scales={value}", [*ev, "--data", "{c}/set", "--scales", value], False)
    add("evaluate-metric-bad", [*ev, "--data", "{c}/set", "--metrics", "psnr,vibes"], False, message="vibes")
    add("evaluate-task", ["evaluate", "--model", "{c}/unet", "--data", "{c}/set", "--task", "retouch", "--json",
        "{o}/r.json"], True, ["r.json"])  # fmt: skip
    add("evaluate-task-scale", ["evaluate", "--model", "{c}/unet", "--data", "{c}/set", "--task", "retouch",
        "--scales", "2"], False, message="--scales")  # fmt: skip
    for value in ("0", "0.5", "1e9", "nan"):
        add(f"evaluate-working-scale={value}", ["evaluate", "--model", "{c}/unet", "--data", "{c}/set", "--task",
            "retouch", "--working-scale", value], False)  # fmt: skip
    add("evaluate-degradation", [*ev, "--data", "{c}/set", "--scales", "2", "--degradation", "bsrgan"], True)
    add("evaluate-seed-huge", [*ev, "--data", "{c}/set", "--degradation", "bsrgan", "--seed", str(2**80)], False)
    add("evaluate-model-missing", ["evaluate", "--model", "nope", "--data", "{c}/set"], False, message="nope")
    # estimate-kernel
    ek = ["estimate-kernel"]
    for f, msg in unreadable.items():
        if f in ("truncated.png", "empty.png", "missing.png", "bomb.png", "float255.tif", "animated.gif"):
            add(f"estimate-kernel-{f}", [*ek, f"{{c}}/{f}", "-o", "{o}/k.npy"], False, message=msg)
    for flag, value in (
        ("--scale", "3"),
        ("--scale", "0"),
        ("--iters", "0"),
        ("--iters", "-5"),
        ("--seed", str(2**70)),
    ):
        add(f"estimate-kernel{flag}={value}", [*ek, "{c}/good96.png", flag, value, "-o", "{o}/k.npy"], False)
    add("estimate-kernel-o-not-npy", [*ek, "{c}/good96.png", "-o", "{c}/good96.png"], False, message=".npy")
    add("estimate-kernel-json-not-json", [*ek, "{c}/good96.png", "-o", "{o}/k.npy", "--json", "{c}/good96.png"],
        False, message=".json")  # fmt: skip
    add("estimate-kernel-png-is-input", [*ek, "{c}/good96.png", "-o", "{o}/k.npy", "--png", "{c}/good96.png",
        "--overwrite"], False, message="input")  # fmt: skip
    add("estimate-kernel-png-exists", [*ek, "{c}/good96.png", "-o", "{o}/k.npy", "--png", "{c}/good.png"],
        False, message="--overwrite")  # fmt: skip
    add("estimate-kernel-json-readonly", [*ek, "{c}/good96.png", "-o", "{o}/k.npy", "--json", "{ro}/k.json"],
        False, message="writable")  # fmt: skip
    add("estimate-kernel-tiny", [*ek, "{c}/tiny8.png", "-o", "{o}/k.npy", "--iters", "5"], False,
        message="KernelGAN needs at least")  # fmt: skip
    add("estimate-kernel-ok", [*ek, "{c}/good96.png", "-o", "{o}/k.npy", "--png", "{o}/k.png", "--json",
        "{o}/k.json", "--iters", "30"], True, ["k.npy", "k.png", "k.json"], slow=True)  # fmt: skip
    # not a command, no arguments
    add("no-such-command", ["sharpen", "{c}/good.png"], False, message="No such command")
    add("upscale-no-input", ["upscale", "--scale", "2"], False, message="Missing argument")
    return out


CASES = cases()


# ------------------------------------------------------------------------------------------------ runner


class Server:
    def __init__(self) -> None:
        env = {**os.environ, "ANYRES_PROGRESS_SECONDS": "30"}
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "cli_server.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )

    def run(self, args: list[str], cwd: Path, out: Path) -> dict:
        request = {"args": args, "cwd": str(cwd), "out": str(out), "timeout": MAX_SECONDS}
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    build_corpus(root / "c")
    before = _hashes(root / "c")
    server = Server()
    yield root, server
    server.close()
    assert _hashes(root / "c") == before  # no case changed any input


def test_the_generator_has_over_200_cases():
    assert len(CASES) >= 200 and len({c.id for c in CASES}) == len(CASES)
    assert sum(not c.ok for c in CASES) >= 150


@pytest.mark.parametrize(
    "case", [pytest.param(c, marks=pytest.mark.slow) if c.slow else c for c in CASES], ids=[c.id for c in CASES]
)
def test_case(corpus, case):
    root, server = corpus
    c, o, logs = root / "c", root / "o" / case.id.replace("/", "_"), root / "logs" / case.id.replace("/", "_")
    o.mkdir(parents=True)
    logs.mkdir(parents=True)
    args = [a.replace("{c}", str(c)).replace("{o}", str(o)).replace("{ro}", READ_ONLY) for a in case.args]
    before = {
        p: hashlib.sha256(p.read_bytes()).hexdigest() for p in c.rglob("*") if p.is_file() and str(p) in " ".join(args)
    }
    reply = server.run(args, root, logs)
    stderr = (logs / "stderr").read_text(errors="replace")
    context = f"anyres {' '.join(case.args)}\n--- stderr ---\n{stderr[-3000:]}"
    assert not reply["timed_out"], f"ran over {MAX_SECONDS} s: {context}"
    assert reply["peak_mb"] < MAX_MB, f"{reply['peak_mb']:.0f} MB: {context}"
    assert "Traceback" not in stderr, context
    errors = [line for line in stderr.splitlines() if line.startswith("anyres: error:")]
    if case.ok:
        assert reply["rc"] == 0 and not errors, context
        for name in case.outputs:
            assert (o / name).is_file() and (o / name).stat().st_size > 0, f"{name} missing: {context}"
    else:
        assert reply["rc"] != 0, context
        if case.id == "evaluate-bad-images" or "set_bad" in " ".join(case.args):
            assert len(errors) >= 1, context  # one line per bad image, then the summary
        else:
            assert len(errors) == 1, context
        assert case.message.lower() in errors[0].lower(), context
        if case.id != "evaluate-bad-images":
            leftovers = [p for p in o.rglob("*") if p.is_file() and p.name not in case.outputs]
            assert not leftovers, f"partial output {leftovers}: {context}"
    tmp = [p for p in (*o.rglob(".*"), *c.rglob(".*.tmp")) if p.is_file()]
    assert not tmp, f"temporary files left: {tmp}"
    assert all(hashlib.sha256(p.read_bytes()).hexdigest() == h for p, h in before.items()), f"input changed: {context}"


def kind_of(case: Case) -> str:
    """The kind of input a case tries, for the counts ``python tests/fuzz/test_fuzz_cli.py`` prints."""
    i = case.id
    if "replay" in i:
        return "malformed replay records"
    if any(k in i for k in ("-o-", "readonly", "-json", "-params", "-save", "png-", "not-npy", "not-json")):
        return "output paths (input, read-only, folder, existing, extension, too long)"
    if any(k in i for k in ("twins", "folder", "recursive", "skip-existing", "-set", "bad-images", "empty", "missing")):
        return "folders and colliding names"
    if "model" in i or "explain" in i or "blind" in i or "resampler" in i:
        return "wrong or missing models"
    if any(k in i for k in ("=", "two-sizes", "threads", "ext-bad", "suffix", "no-input", "no-such", "pipeline")):
        return "absurd numbers and flags"
    return "file contents (modes, depths, formats, corrupt, bombs, frames)"


if __name__ == "__main__":
    from collections import Counter

    print(f"{len(CASES)} cases ({sum(not c.ok for c in CASES)} bad input, {sum(c.ok for c in CASES)} good)\n")
    for title, key in (("command", lambda c: c.args[0]), ("kind", kind_of)):
        counts = Counter(key(c) for c in CASES)
        bad = Counter(key(c) for c in CASES if not c.ok)
        print(f"| {title} | cases | bad input | good input |\n|---|---|---|---|")
        for name, n in sorted(counts.items(), key=lambda kv: -kv[1]):
            print(f"| {name} | {n} | {bad[name]} | {n - bad[name]} |")
        print()
