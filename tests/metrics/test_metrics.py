"""Tests for anyres.metrics and anyres.ops.color against scikit-image as an independent oracle (tiny images)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from anyres.metrics import PROTOCOLS, measure, prepare, psnr, shave_for, ssim
from anyres.ops.color import quantize, rgb_to_y_matlab


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def _smooth_pair(rng, shape=(1, 3, 27, 33)):
    """An 8-bit smooth image and a noisy 8-bit copy of it, as float [0, 1] tensors."""
    b, c, h, w = shape
    yy, xx = np.meshgrid(np.linspace(0, 1, h), np.linspace(0, 1, w), indexing="ij")
    base = np.stack([0.5 + 0.4 * np.sin(3 * xx + 2 * yy + k) for k in range(c)])[None].repeat(b, 0)
    hr = np.round(base * 255) / 255
    sr = np.clip(np.round((hr + rng.normal(0, 0.03, hr.shape)) * 255), 0, 255) / 255
    return torch.from_numpy(sr), torch.from_numpy(hr)


def _sk_ssim(a: np.ndarray, b: np.ndarray, **kw) -> float:
    return structural_similarity(
        a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255, **kw
    )


# ----------------------------------------------------------------------------------------------- colour


def test_rgb_to_y_matches_skimage(rng):
    rgb = rng.random((2, 3, 9, 11))
    ours = rgb_to_y_matlab(torch.from_numpy(rgb))
    assert ours.shape == (2, 1, 9, 11) and ours.dtype == torch.float64
    for i in range(2):
        ref = rgb2ycbcr(rgb[i].transpose(1, 2, 0))[..., 0]
        np.testing.assert_allclose(ours[i, 0].numpy(), ref, atol=1e-10, rtol=0)


def test_rgb_to_y_range_and_shape_check():
    black, white = torch.zeros(1, 3, 2, 2), torch.ones(1, 3, 2, 2)
    torch.testing.assert_close(rgb_to_y_matlab(black), torch.full((1, 1, 2, 2), 16.0))
    torch.testing.assert_close(rgb_to_y_matlab(white), torch.full((1, 1, 2, 2), 235.0), atol=1e-4, rtol=0)
    with pytest.raises(ValueError):
        rgb_to_y_matlab(torch.zeros(1, 1, 2, 2))
    with pytest.raises(ValueError):
        rgb_to_y_matlab(torch.zeros(3, 2, 2))


def test_quantize_rounds_and_clamps():
    x = torch.tensor([-0.2, 0.0, 0.5, 1.0 / 510 + 1e-6, 1.3])
    q = quantize(x)
    assert torch.equal(q * 255 - torch.round(q * 255), torch.zeros(5))
    torch.testing.assert_close(q, torch.tensor([0.0, 0.0, 128 / 255, 1 / 255, 1.0]))


# ----------------------------------------------------------------------------------------------- PSNR / SSIM


def test_psnr_matches_skimage(rng):
    a = rng.integers(0, 256, (2, 1, 20, 25)).astype(np.float64)
    b = np.clip(a + rng.normal(0, 12, a.shape), 0, 255).round()
    ours = psnr(torch.from_numpy(a), torch.from_numpy(b))
    assert ours.shape == (2,)
    for i in range(2):
        assert ours[i].item() == pytest.approx(peak_signal_noise_ratio(a[i], b[i], data_range=255), abs=1e-10)


def test_psnr_known_value():
    a = torch.zeros(1, 1, 4, 4, dtype=torch.float64)
    b = torch.full_like(a, 255.0)  # MSE = 255^2 -> 0 dB
    assert psnr(a, b).item() == pytest.approx(0.0, abs=1e-12)
    b = torch.full_like(a, 25.5)  # MSE = (255/10)^2 -> 20 dB
    assert psnr(a, b).item() == pytest.approx(20.0, abs=1e-10)


@pytest.mark.parametrize("shape", [(30, 37), (11, 11), (16, 45)])
def test_ssim_matches_skimage(rng, shape):
    a = rng.integers(0, 256, shape).astype(np.float64)
    b = np.clip(a + rng.normal(0, 20, shape), 0, 255).round()
    ref = _sk_ssim(a, b)
    ours = ssim(torch.from_numpy(a)[None, None], torch.from_numpy(b)[None, None])
    assert ours.item() == pytest.approx(ref, abs=1e-6)


def test_skimage_ssim_averages_the_valid_region(rng):
    # skimage filters with 'reflect' padding, then averages the map with a 5-pixel border (win 11) cropped:
    # exactly MATLAB's 'valid' region, so the two agree. Check that premise and the unweighted map mean.
    a = rng.integers(0, 256, (24, 29)).astype(np.float64)
    b = np.clip(a + rng.normal(0, 25, a.shape), 0, 255).round()
    mean, full = _sk_ssim(a, b, full=True)
    assert full.shape == a.shape
    assert mean == pytest.approx(full[5:-5, 5:-5].mean(), abs=1e-12)
    assert abs(mean - full.mean()) > 1e-6  # the border does differ, so the crop matters
    ours = ssim(torch.from_numpy(a)[None, None], torch.from_numpy(b)[None, None])
    assert ours.item() == pytest.approx(mean, abs=1e-6)


def test_ssim_multichannel_is_channel_mean(rng):
    a = rng.integers(0, 256, (1, 3, 20, 22)).astype(np.float64)
    b = np.clip(a + rng.normal(0, 15, a.shape), 0, 255).round()
    ours = ssim(torch.from_numpy(a), torch.from_numpy(b)).item()
    ref = np.mean([_sk_ssim(a[0, c], b[0, c]) for c in range(3)])
    assert ours == pytest.approx(ref, abs=1e-6)


def test_identical_images_give_inf_psnr_and_unit_ssim(rng):
    a = torch.from_numpy(rng.integers(0, 256, (2, 3, 16, 18)).astype(np.float64))
    assert torch.isinf(psnr(a, a.clone())).all()
    torch.testing.assert_close(ssim(a, a.clone()), torch.ones(2, dtype=torch.float64), atol=1e-12, rtol=0)
    img = a[:1] / 255
    score = measure(img, img.clone(), 2)
    assert math.isinf(score.psnr) and score.psnr > 0
    assert score.ssim == pytest.approx(1.0, abs=1e-12)


def test_ssim_too_small_and_shape_mismatch():
    with pytest.raises(ValueError):
        ssim(torch.zeros(1, 1, 10, 20), torch.zeros(1, 1, 10, 20))
    with pytest.raises(ValueError):
        ssim(torch.zeros(1, 1, 12, 12), torch.zeros(1, 1, 12, 13))
    with pytest.raises(ValueError):
        psnr(torch.zeros(1, 1, 12, 12), torch.zeros(1, 3, 12, 12))


# ----------------------------------------------------------------------------------------------- protocols


@pytest.mark.parametrize(
    "scale,bench_shave,div2k_shave",
    [(1, 1, 7), (2, 2, 8), (3, 3, 9), (4, 4, 10), (2.5, 3, 9), (1.5, 2, 8), (3.3, 4, 10), (2.0000000001, 2, 8)],
)
def test_shave_for(scale, bench_shave, div2k_shave):
    assert shave_for(scale, "benchmark") == bench_shave
    assert shave_for(scale, "div2k") == div2k_shave


def test_unknown_protocol():
    assert PROTOCOLS == ("benchmark", "div2k")
    with pytest.raises(ValueError):
        shave_for(2, "set5")
    with pytest.raises(ValueError):
        prepare(torch.zeros(1, 1, 20, 20), 2, "set5")


def test_prepare_grayscale_is_scaled_only(rng):
    img = torch.from_numpy(rng.integers(0, 256, (1, 1, 20, 23)) / 255.0)
    out = prepare(img, 2, "benchmark")
    assert out.shape == (1, 1, 16, 19) and out.dtype == torch.float64
    torch.testing.assert_close(out, img[..., 2:-2, 2:-2] * 255, atol=1e-9, rtol=0)


def test_prepare_rgb_benchmark_is_rounded_y(rng):
    img = torch.from_numpy(rng.integers(0, 256, (1, 3, 20, 23)) / 255.0)
    out = prepare(img, 3, "benchmark")
    assert out.shape == (1, 1, 14, 17)
    assert torch.equal(out, torch.round(out))  # MATLAB rgb2ycbcr on uint8 returns uint8
    y = rgb2ycbcr(img[0].numpy().transpose(1, 2, 0))[..., 0]
    np.testing.assert_array_equal(out[0, 0].numpy(), np.round(y)[3:-3, 3:-3])
    assert 16 <= out.min() and out.max() <= 235


def test_prepare_quantizes_and_clamps():
    img = torch.tensor([[-0.5, 0.2, 1.7]]).reshape(1, 1, 1, 3).expand(1, 1, 3, 3).contiguous()
    out = prepare(img, 1 - 1e-12, "benchmark")  # ceil(0.999..) = 1 -> shave 1
    torch.testing.assert_close(out, torch.tensor([[[[51.0]]]], dtype=torch.float64))


def test_prepare_div2k_keeps_rgb(rng):
    img = torch.from_numpy(rng.integers(0, 256, (1, 3, 30, 31)) / 255.0)
    out = prepare(img, 2, "div2k")
    assert out.shape == (1, 3, 14, 15)
    torch.testing.assert_close(out, img[..., 8:-8, 8:-8] * 255, atol=1e-9, rtol=0)


def test_prepare_rejects_bad_shapes():
    with pytest.raises(ValueError):
        prepare(torch.zeros(1, 2, 20, 20), 2)
    with pytest.raises(ValueError):
        prepare(torch.zeros(3, 20, 20), 2)
    with pytest.raises(ValueError):
        prepare(torch.zeros(1, 3, 20, 20), 4, "div2k")  # shave 10 per side leaves nothing


def test_measure_matches_skimage_pipeline(rng):
    sr, hr = _smooth_pair(rng)
    score = measure(sr, hr, 2, "benchmark")
    ys = [np.round(rgb2ycbcr(t[0].numpy().transpose(1, 2, 0))[..., 0])[2:-2, 2:-2] for t in (sr, hr)]
    assert score.psnr == pytest.approx(peak_signal_noise_ratio(ys[1], ys[0], data_range=255), abs=1e-9)
    assert score.ssim == pytest.approx(_sk_ssim(ys[0], ys[1]), abs=1e-6)


def test_measure_div2k_matches_skimage_rgb(rng):
    sr, hr = _smooth_pair(rng, (1, 3, 30, 34))
    score = measure(sr, hr, 2, "div2k")
    a, b = (t[0].numpy()[:, 8:-8, 8:-8] * 255 for t in (sr, hr))
    assert score.psnr == pytest.approx(peak_signal_noise_ratio(b, a, data_range=255), abs=1e-9)
    assert score.ssim == pytest.approx(np.mean([_sk_ssim(a[c], b[c]) for c in range(3)]), abs=1e-6)
    assert score.psnr != pytest.approx(measure(sr, hr, 2, "benchmark").psnr, abs=1e-3)


def test_measure_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="differs"):
        measure(torch.zeros(1, 3, 20, 20), torch.zeros(1, 3, 20, 21), 2)
    with pytest.raises(ValueError):
        measure(torch.zeros(1, 1, 20, 20), torch.zeros(1, 3, 20, 20), 2)
