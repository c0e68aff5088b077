"""Throughput of the degradation pipelines: 256x256 HR patches at x4, 2 threads, side by side in one run.

For each pipeline the same 32 parameter records are applied

* batched: one ``pipeline.apply`` call on a (32, 3, 256, 256) batch (sampling included), and
* one image at a time: 32 calls on (1, 3, 256, 256) (sampling included),

and, as a yardstick, through a re-implementation of the *compute pattern* of the reference code (written
here, not copied; it replays the same records so that the work is the same):

* ``bsrgan``: KAIR's ``utils_blindsr.degradation_bsrgan`` works per image on float32 HWC numpy arrays:
  ``scipy.ndimage.convolve`` with a ``(k, k, 1)`` kernel for each blur and for the shifted "nearest"
  kernel, OpenCV resizes (Pillow's float resize here: no OpenCV on this machine), numpy noise and an
  8-bit codec round trip for JPEG (Pillow here; the reference uses OpenCV's libjpeg);
* ``realesrgan``: BasicSR's ``RealESRGANModel.feed_data`` runs batched torch ops: every kernel zero-padded
  to 21 taps and applied as one grouped ``conv2d`` after reflect padding, ``F.interpolate`` with one mode and
  factor per batch, torch noise, and a differentiable JPEG (``ops.jpeg.jpeg_differentiable`` stands in for
  its DiffJPEG) for both JPEG passes;
* ``classical``: the SRMD-style per-image numpy path (``scipy.ndimage`` blur, resize, numpy noise).

The "compute" yardsticks leave out work the references also do, so they run *faster* than the real
references and ``speedup_vs_reference_style`` is a lower bound. The "full" yardsticks add the two costs of
the references that are documented in ``../shared/reference/blind_sr.md`` and that anyres does not pay:

* ``bsrgan``: KAIR builds each anisotropic kernel with a Python double loop calling
  ``scipy.stats.multivariate_normal.pdf`` once per tap (section 1.2);
* ``realesrgan``: BasicSR's ``feed_data`` always computes the USM-sharpened GT (a 51x51 Gaussian ``filter2D``
  of the image and of its mask, section 2.4) before degrading.

anyres makes no USM GT (its blind models are PSNR-oriented), so the "full" ratio is not like-for-like for a
user who wants one; the "compute" ratio is the headline.

Usage: ``python benchmarks/degrade_speed.py [--rounds 3] [--batch 32] [--data ../shared/data/train/T91]``.
The last line printed is one JSON object::

    {"classical": {"patches_per_s": x, "batch1_patches_per_s": y, "reference_style_patches_per_s": z,
                   "speedup_vs_reference_style": x / z, "reference_style_full_patches_per_s": f,
                   "speedup_vs_reference_style_full": x / f}, "bsrgan": {...}, "realesrgan": {...}}
"""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from scipy import ndimage

from anyres.degrade import get_pipeline
from anyres.degrade.steps import build_kernel
from anyres.ops.jpeg import jpeg_differentiable
from anyres.ops.kernels import gaussian_kernel, pad_kernel

PATCH = 256
SCALE = 4.0


def hr_patches(batch: int, folder: Path | None, seed: int = 0) -> torch.Tensor:
    """``batch`` random 256x256 crops of the training photos (smooth noise if the folder is missing)."""
    g = torch.Generator().manual_seed(seed)
    if folder is not None and folder.is_dir():
        from anyres.sr.data import load_hr_folders

        images = [im for im in load_hr_folders([folder]) if min(im.shape[-2:]) >= PATCH]
        crops = []
        for _ in range(batch):
            im = images[int(torch.randint(len(images), (), generator=g))]
            y = int(torch.randint(im.shape[-2] - PATCH + 1, (), generator=g))
            x = int(torch.randint(im.shape[-1] - PATCH + 1, (), generator=g))
            crops.append(im[:, y : y + PATCH, x : x + PATCH].float() / 255.0)
        return torch.stack(crops)
    base = torch.rand(batch, 3, PATCH // 16, PATCH // 16, generator=g)
    return F.interpolate(base, size=(PATCH, PATCH), mode="bilinear", align_corners=False)


# ------------------------------------------------------------------------------------------------ numpy path


def _np_kernel(step: dict) -> np.ndarray:
    # Kernel synthesis is not timed as the reference's Python loops would be: built with our op, as float32.
    return build_kernel(step)[0].numpy().astype(np.float32)


def _np_blur(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    return ndimage.convolve(img, kernel[..., None], mode="mirror")


def _np_resize(img: np.ndarray, size, mode: str) -> np.ndarray:
    h, w = int(size[0]), int(size[1])
    if img.shape[:2] == (h, w):
        return img
    method = {
        "bilinear": Image.BILINEAR,
        "bicubic": Image.BICUBIC,
        "area": Image.BOX,
        "nearest": Image.NEAREST,
        "lanczos": Image.LANCZOS,
    }[mode]
    planes = [np.asarray(Image.fromarray(img[..., c]).resize((w, h), method)) for c in range(img.shape[2])]
    return np.stack(planes, axis=2)


def _np_noise(img: np.ndarray, step: dict, rng: np.random.Generator) -> np.ndarray:
    if step["kind"] == "poisson":
        vals = len(np.unique(np.round(img * 255)))
        peak = 2 ** np.ceil(np.log2(max(vals, 2)))
        return np.clip(img + step["scale"] * (rng.poisson(np.clip(img, 0, 1) * peak) / peak - img), 0, 1)
    sigma = step["level"] / 255.0
    if step["kind"] == "gray":
        return np.clip(img + rng.normal(0, sigma, img.shape[:2])[..., None].astype(np.float32), 0, 1)
    if step["kind"] == "correlated":
        cov = np.asarray(step["covariance"])
        return np.clip(img + rng.multivariate_normal(np.zeros(3), cov, img.shape[:2]).astype(np.float32), 0, 1)
    return np.clip(img + rng.normal(0, sigma, img.shape).astype(np.float32), 0, 1)


def _np_jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(np.uint8((img.clip(0, 1) * 255.0).round())).save(buf, format="JPEG", quality=int(quality))
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"), dtype=np.float32) / 255.0


def per_tap_anisotropic_kernel(step: dict) -> np.ndarray:
    """KAIR's way of building an anisotropic Gaussian: one ``multivariate_normal.pdf`` call per tap."""
    from scipy.stats import multivariate_normal

    v1, v2 = step["var"]
    theta = step["theta"]
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    cov = rot @ np.diag([v1, v2]) @ rot.T
    k = int(step["size"])
    centre = k // 2
    kernel = np.zeros((k, k))
    for y in range(k):
        for x in range(k):
            kernel[y, x] = multivariate_normal.pdf([x - centre, y - centre], mean=[0, 0], cov=cov)
    return (kernel / kernel.sum()).astype(np.float32)


def kair_style_bsrgan(
    img: np.ndarray, record: dict, rng: np.random.Generator, per_tap_kernels: bool = False
) -> np.ndarray:
    if record["halve"] is not None:
        img = _np_resize(img, record["halve"]["size"], record["halve"]["mode"])
    for step in record["order"]:
        spec = record[step]
        if spec is None:
            continue
        if step.startswith("blur"):
            slow = per_tap_kernels and spec["kind"] == "bsrgan_aniso"
            img = _np_blur(img, per_tap_anisotropic_kernel(spec) if slow else _np_kernel(spec))
        elif step == "down1" and spec["kind"] == "nearest":
            s = img.shape[0] / spec["size"][0]
            k = gaussian_kernel(int(spec["kernel_size"]), torch.tensor([float(spec["sigma"])], dtype=torch.float64))
            img = _np_blur(img, k[0].numpy().astype(np.float32))
            idx = np.minimum((np.arange(spec["size"][0]) * s).astype(int), img.shape[0] - 1)
            jdx = np.minimum((np.arange(spec["size"][1]) * s).astype(int), img.shape[1] - 1)
            img = img[idx][:, jdx]
        elif step in ("down1", "down2"):
            img = np.clip(_np_resize(img, spec["size"], spec["mode"]), 0, 1)
        elif step == "noise":
            img = _np_noise(img, spec, rng)
        elif step == "jpeg":
            img = _np_jpeg(img, spec["quality"])
        # "camera": the reference releases no ISP model and skips this step.
    return _np_jpeg(img, record["final_jpeg"]["quality"])


def srmd_style_classical(img: np.ndarray, record: dict, rng: np.random.Generator) -> np.ndarray:
    img = _np_blur(img, _np_kernel(record["blur"]))
    img = np.clip(_np_resize(img, record["resize"]["size"], "bicubic"), 0, 1)
    if record["noise"] is not None:
        img = _np_noise(img, record["noise"], rng)
    if record["jpeg"] is not None:
        img = _np_jpeg(img, record["jpeg"]["quality"])
    return np.round(img * 255) / 255


def per_image_numpy(fn, hr: torch.Tensor, records: list[dict]) -> None:
    rng = np.random.default_rng(0)
    for b, record in enumerate(records):
        fn(hr[b].permute(1, 2, 0).numpy().astype(np.float32), record, rng)


# ------------------------------------------------------------------------------------------ batched torch path


def _padded_blur(x: torch.Tensor, kernels: list[torch.Tensor]) -> torch.Tensor:
    """BasicSR's filter2D on 21-tap kernels: reflect pad 10, one grouped conv over all planes."""
    b, c, h, w = x.shape
    k = torch.cat([pad_kernel(kk, 21) for kk in kernels]).to(x.dtype)
    xp = F.pad(x, (10, 10, 10, 10), mode="reflect")
    weight = k.unsqueeze(1).repeat_interleave(c, dim=0)
    return F.conv2d(xp.reshape(1, b * c, h + 20, w + 20), weight, groups=b * c).reshape(b, c, h, w)


def _batch_resize(x: torch.Tensor, step: dict) -> torch.Tensor:
    mode = {"bilinear": "bilinear", "bicubic": "bicubic", "area": "area"}.get(step["mode"], "bilinear")
    size = [int(v) for v in step["size"]]
    if size == list(x.shape[-2:]):
        return x
    kw = {} if mode == "area" else {"align_corners": False}
    return F.interpolate(x, size=size, mode=mode, **kw)


def _batch_noise(x: torch.Tensor, step: dict, records: list[dict], key: str, g: torch.Generator) -> torch.Tensor:
    if step["kind"] == "poisson":
        vals = torch.tensor([len(torch.unique(torch.round(v * 255))) for v in x], dtype=x.dtype)
        peak = (2 ** torch.ceil(torch.log2(vals.clamp_min(2)))).view(-1, 1, 1, 1)
        scale = torch.tensor([r[key].get("scale", 1.0) for r in records], dtype=x.dtype).view(-1, 1, 1, 1)
        noise = torch.poisson(x.clamp(0, 1) * peak, generator=g) / peak - x
        return (x + scale * noise).clamp(0, 1)
    sigma = torch.tensor([r[key].get("level", 1.0) for r in records], dtype=x.dtype).view(-1, 1, 1, 1) / 255.0
    return (x + torch.randn(x.shape, generator=g) * sigma).clamp(0, 1)


def _usm(gt: torch.Tensor) -> torch.Tensor:
    """BasicSR's USMSharp (radius 50, weight 0.5, threshold 10/255) as a 51x51 grouped filter2D."""
    g1 = torch.exp(-0.5 * (torch.arange(51, dtype=torch.float64) - 25) ** 2 / 8.0**2)
    g1 = g1 / g1.sum()
    kernel = (g1[:, None] * g1[None, :]).unsqueeze(0)

    def blur(x):
        b, c, h, w = x.shape
        xp = F.pad(x, (25, 25, 25, 25), mode="reflect")
        weight = kernel.to(x.dtype).unsqueeze(1).repeat(b * c, 1, 1, 1)
        return F.conv2d(xp.reshape(1, b * c, h + 50, w + 50), weight, groups=b * c).reshape(b, c, h, w)

    residual = gt - blur(gt)
    mask = blur((residual.abs() * 255 > 10).to(gt.dtype))
    return mask * (gt + 0.5 * residual).clamp(0, 1) + (1 - mask) * gt


def basicsr_style_realesrgan(hr: torch.Tensor, records: list[dict], usm: bool = False) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    if usm:
        hr = _usm(hr)
    r0 = records[0]  # per-batch choices, as in feed_data
    quality1 = torch.tensor([float(r["jpeg1"]["quality"]) for r in records])
    quality2 = torch.tensor([float(r["final_jpeg"]["quality"]) for r in records])
    x = _padded_blur(hr, [build_kernel(r["blur1"]) for r in records])
    x = _batch_resize(x, r0["resize1"])
    x = _batch_noise(x, r0["noise1"], records, "noise1", g)
    x = jpeg_differentiable(x.clamp(0, 1), quality1)
    x = _padded_blur(x, [build_kernel(r["blur2"] or {"kind": "iso", "size": 21, "sigma": 0.0}) for r in records])
    x = _batch_resize(x, r0["resize2"])
    x = _batch_noise(x, r0["noise2"], records, "noise2", g)
    sincs = [build_kernel(r["final_sinc"] or {"kind": "iso", "size": 21, "sigma": 0.0}) for r in records]
    if r0["final_order"][0] == "resize":
        x = _padded_blur(_batch_resize(x, r0["final_resize"]), sincs)
        x = jpeg_differentiable(x.clamp(0, 1), quality2)
    else:
        x = jpeg_differentiable(x.clamp(0, 1), quality2)
        x = _padded_blur(_batch_resize(x, r0["final_resize"]), sincs)
    return torch.round(x.clamp(0, 1) * 255) / 255


# -------------------------------------------------------------------------------------------------- timing


def best_of(rounds: int, fn) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per path (the best is reported)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "train" / "T91"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    hr = hr_patches(args.batch, args.data)
    print(
        f"{args.batch} HR patches {PATCH}x{PATCH}, scale x{SCALE:g}, {torch.get_num_threads()} threads, "
        f"best of {args.rounds} rounds"
    )
    results = {}
    for name in ("classical", "bsrgan", "realesrgan"):
        pipe = get_pipeline(name)

        def records(seed: int = 0) -> list[dict]:
            return pipe.sample(args.batch, torch.Generator().manual_seed(seed), scale=SCALE, hr_size=[PATCH, PATCH])

        recs = records()
        pipe.apply(hr[:2], recs[:2])  # warm-up (FFT plans, Pillow)

        def batched():
            pipe.apply(hr, records())

        def one_at_a_time():
            for b, r in enumerate(records()):
                pipe.apply(hr[b : b + 1], [r])

        if name == "realesrgan":

            def reference():
                basicsr_style_realesrgan(hr, recs)

            def reference_full():
                basicsr_style_realesrgan(hr, recs, usm=True)
        else:
            fn = kair_style_bsrgan if name == "bsrgan" else srmd_style_classical

            def reference():
                per_image_numpy(fn, hr, recs)

            def reference_full():
                if name == "bsrgan":
                    per_image_numpy(lambda i, r, g: kair_style_bsrgan(i, r, g, per_tap_kernels=True), hr, recs)
                else:
                    per_image_numpy(fn, hr, recs)

        t_batch = best_of(args.rounds, batched)
        t_one = best_of(args.rounds, one_at_a_time)
        t_ref = best_of(max(1, args.rounds - 1), reference)
        t_full = best_of(1, reference_full)
        n = args.batch
        results[name] = {
            "patches_per_s": round(n / t_batch, 1),
            "batch1_patches_per_s": round(n / t_one, 1),
            "reference_style_patches_per_s": round(n / t_ref, 1),
            "speedup_vs_reference_style": round(t_ref / t_batch, 2),
            "reference_style_full_patches_per_s": round(n / t_full, 1),
            "speedup_vs_reference_style_full": round(t_full / t_batch, 2),
        }
        r = results[name]
        print(
            f"{name:>10}: batched {r['patches_per_s']:7.1f}/s  one at a time {r['batch1_patches_per_s']:7.1f}/s  "
            f"reference-style {r['reference_style_patches_per_s']:7.1f}/s (x{r['speedup_vs_reference_style']}), "
            f"full {r['reference_style_full_patches_per_s']:7.1f}/s (x{r['speedup_vs_reference_style_full']})"
        )
    training_batch_cost(args.data)
    print(json.dumps(results))


def training_batch_cost(folder: Path) -> None:
    """Seconds to draw one training batch of configs/liif-real.yaml (16 x 48x48 LR patches, scale U(1, 4)),
    bicubic vs Real-ESRGAN LR; compare with a LIIF training step (~1.6 s here, benchmarks/RESULTS.md)."""
    if folder is None or not folder.is_dir():
        return
    from anyres.sr.data import RandomScaleSampler, load_hr_folders

    images = load_hr_folders([folder])
    for name in (None, "realesrgan", "bsrgan"):
        sampler = RandomScaleSampler(images, 48, 1.0, 4.0, 2304, True, degradation=name)
        sampler.sample(16, torch.Generator().manual_seed(0))
        t0 = time.perf_counter()
        for i in range(10):
            sampler.sample(16, torch.Generator().manual_seed(i + 1))
        print(
            f"training batch (16 x 48x48 LR, x1-x4) with {name or 'bicubic'} LR: "
            f"{(time.perf_counter() - t0) / 10:.3f} s"
        )


if __name__ == "__main__":
    main()
