"""Degradation building blocks: kernels (build), filtering (apply), noise and JPEG ops."""

import math

import pytest
import torch
import torch.nn.functional as F

from anyres.ops import camera, filtering, jpeg, kernels, noise


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _t(*values, dtype=torch.float64):
    return torch.tensor(values, dtype=dtype)


def _smooth_image(b=1, h=32, w=32, dtype=torch.float32):
    """A smooth RGB test image in (0.1, 0.9): sums of low-frequency cosines."""
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    chans = [0.5 + 0.3 * torch.cos(xx / 5 + c) * torch.cos(yy / 7 - c) for c in range(3)]
    return torch.stack(chans).unsqueeze(0).expand(b, 3, h, w).to(dtype).contiguous()


# ---------------------------------------------------------------------------------------------------------
# kernels


def _all_kernels(size, dtype):
    g = _gen(1)
    b = 4
    sx = (0.3 + 3.0 * torch.rand(b, generator=g, dtype=torch.float64)).to(dtype)
    sy = (0.3 + 3.0 * torch.rand(b, generator=g, dtype=torch.float64)).to(dtype)
    th = (math.pi * torch.rand(b, generator=g, dtype=torch.float64)).to(dtype)
    beta = (0.5 + 3.5 * torch.rand(b, generator=g, dtype=torch.float64)).to(dtype)
    omega = (math.pi / 5 + (math.pi - math.pi / 5) * torch.rand(b, generator=g, dtype=torch.float64)).to(dtype)
    support = torch.tensor([7, 9, 13, size])
    return {
        "iso": kernels.gaussian_kernel(size, sx),
        "aniso": kernels.gaussian_kernel(size, sx, sy, th),
        "aniso_support": kernels.gaussian_kernel(size, sx, sy, th, support=support),
        "bsrgan": kernels.bsrgan_anisotropic_kernel(size, sx**2, sy**2, th),
        "generalized": kernels.generalized_gaussian_kernel(size, sx, sy, th, beta),
        "plateau": kernels.plateau_kernel(size, sx, sy, th, beta),
        "sinc": kernels.sinc_kernel(size, omega),
        "sinc_support": kernels.sinc_kernel(size, omega, support=support),
        "delta": kernels.gaussian_kernel(size, torch.zeros(b, dtype=dtype)),
    }


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_kernels_sum_to_one_with_odd_size_and_follow_dtype(dtype):
    for name, k in _all_kernels(21, dtype).items():
        assert k.shape == (4, 21, 21) and k.dtype == dtype, name
        assert torch.isfinite(k).all(), name
        torch.testing.assert_close(k.sum(dim=(1, 2)), torch.ones(4, dtype=dtype), atol=1e-6, rtol=0, msg=name)


def test_delta_kernel_for_zero_sigma():
    k = kernels.gaussian_kernel(7, torch.zeros(2))
    expected = torch.zeros(2, 7, 7)
    expected[:, 3, 3] = 1
    assert torch.equal(k, expected)


def test_anisotropic_gaussian_moments_match_sigmas_and_angle():
    sx, sy = _t(1.0, 3.0, 2.5, 0.8), _t(2.0, 1.2, 2.5, 3.5)
    th = _t(0.3, 2.0, 1.0, -0.7)
    k = kernels.gaussian_kernel(41, sx, sy, th)  # half-width 20 >= 5.7 sigma: truncation is negligible
    cov = kernels.kernel_moments(k)
    torch.testing.assert_close(cov, kernels.gaussian_covariance(sx, sy, th), atol=2e-3, rtol=2e-3)
    # The angle of the sigma_x axis, recovered from the moments (where the sigmas differ), modulo pi.
    angle = 0.5 * torch.atan2(2 * cov[:, 0, 1], cov[:, 0, 0] - cov[:, 1, 1])
    for i in (0, 1, 3):
        major_is_x = sx[i] > sy[i]
        want = th[i] if major_is_x else th[i] + math.pi / 2
        diff = (angle[i] - want + math.pi / 2) % math.pi - math.pi / 2
        assert abs(float(diff)) < 1e-3, (i, float(angle[i]), float(want))
    # The centroid is the centre tap.
    torch.testing.assert_close(kernels.kernel_centroid(k), torch.zeros(4, 2, dtype=torch.float64), atol=1e-12, rtol=0)


def test_truncated_kernel_moments_are_smaller():
    # A 7x7 kernel cannot hold a sigma-3 Gaussian: its moments must fall clearly short of sigma^2.
    cov = kernels.kernel_moments(kernels.gaussian_kernel(7, _t(3.0)))
    assert cov[0, 0, 0] < 0.6 * 9


def test_bsrgan_parameterisation_is_variances_with_a_reflection():
    var_1, var_2, th = _t(1.0, 8.0, 0.5), _t(6.0, 2.0, 0.5), _t(0.4, 2.9, 1.3)
    k = kernels.bsrgan_anisotropic_kernel(31, var_1, var_2, th)
    torch.testing.assert_close(k, kernels.gaussian_kernel(31, var_1.sqrt(), var_2.sqrt(), th), atol=1e-12, rtol=0)
    eig = torch.linalg.eigvalsh(kernels.kernel_moments(k))
    torch.testing.assert_close(
        eig, torch.stack([torch.minimum(var_1, var_2), torch.maximum(var_1, var_2)], -1), atol=0.03, rtol=0.01
    )


def test_isotropic_kernels_are_rotation_symmetric_and_ignore_theta():
    sigma, beta = _t(0.7, 1.9, 3.0), _t(0.6, 1.0, 3.0)
    theta = _t(0.0, 0.5, 2.0)
    built = {
        "gauss": kernels.gaussian_kernel(15, sigma),
        "generalized": kernels.generalized_gaussian_kernel(15, sigma, None, None, beta),
        "plateau": kernels.plateau_kernel(15, sigma, None, None, beta),
        "sinc": kernels.sinc_kernel(15, _t(0.8, 1.7, 3.0)),
    }
    for name, k in built.items():
        for image in (k.transpose(1, 2), k.rot90(1, (1, 2)), k.flip(1), k.flip(2)):
            torch.testing.assert_close(image, k, atol=1e-14, rtol=0, msg=name)
    rotated = kernels.gaussian_kernel(15, sigma, sigma, theta)
    torch.testing.assert_close(rotated, built["gauss"], atol=1e-14, rtol=0)


def test_generalized_gaussian_shape():
    sx, sy, th = _t(1.5, 2.5), _t(2.0, 1.0), _t(0.3, -1.2)
    gauss = kernels.gaussian_kernel(21, sx, sy, th)
    # beta = 1 is the Gaussian in Real-ESRGAN's parameterisation exp(-q^beta / 2), q = squared distance.
    torch.testing.assert_close(
        kernels.generalized_gaussian_kernel(21, sx, sy, th, _t(1.0, 1.0)), gauss, atol=1e-14, rtol=0
    )
    # Known ratios along the x axis of an unrotated kernel: exp(-(r^2/s^2)^beta / 2) and 1 / (1 + (r^2/s^2)^beta).
    s, beta = 2.0, 2.0
    g = kernels.generalized_gaussian_kernel(21, _t(s), _t(s), _t(0.0), _t(beta))[0]
    p = kernels.plateau_kernel(21, _t(s), _t(s), _t(0.0), _t(beta))[0]
    for r in (1, 2, 3):
        q = (r / s) ** 2
        assert float(g[10, 10 + r] / g[10, 10]) == pytest.approx(math.exp(-0.5 * q**beta), rel=1e-12)
        assert float(p[10, 10 + r] / p[10, 10]) == pytest.approx(1 / (1 + q**beta), rel=1e-12)
    # beta > 1: flatter top than the Gaussian of the same sigma; beta < 1: heavier tails.
    ref = kernels.gaussian_kernel(21, _t(2.0))[0]
    flat = kernels.generalized_gaussian_kernel(21, _t(2.0), None, None, _t(4.0))[0]
    heavy = kernels.generalized_gaussian_kernel(21, _t(2.0), None, None, _t(0.5))[0]
    assert flat[10, 11] / flat[10, 10] > ref[10, 11] / ref[10, 10]
    assert heavy[10, 18] / heavy[10, 10] > ref[10, 18] / ref[10, 10]


def test_sinc_kernel_passes_below_cutoff_and_attenuates_above():
    omega = _t(math.pi / 3, math.pi / 2, 2.0, 2.6)
    k = kernels.sinc_kernel(21, omega)
    n = 128
    gain = torch.fft.fft2(k, s=(n, n)).abs()  # zero-padded to 128 x 128
    f = torch.fft.fftfreq(n, dtype=torch.float64) * 2 * math.pi
    radius = torch.sqrt(f[:, None] ** 2 + f[None, :] ** 2)
    for i, w in enumerate(omega.tolist()):
        passband = gain[i][radius < 0.8 * w]
        stopband = gain[i][radius > 1.25 * w]
        assert passband.min() > 0.8 and passband.max() < 1.2, (w, passband.min(), passband.max())
        assert stopband.max() < 0.15, (w, stopband.max())


def test_support_equals_building_small_and_padding():
    sx, sy, th, beta = _t(1.0, 2.0), _t(2.0, 0.5), _t(0.3, 1.0), _t(0.7, 1.5)
    support = torch.tensor([7, 11])
    padded = torch.stack(
        [
            kernels.pad_kernel(
                kernels.generalized_gaussian_kernel(s, sx[i : i + 1], sy[i : i + 1], th[i : i + 1], beta[i : i + 1]), 21
            )[0]
            for i, s in enumerate(support.tolist())
        ]
    )
    torch.testing.assert_close(
        kernels.generalized_gaussian_kernel(21, sx, sy, th, beta, support=support), padded, atol=1e-14, rtol=0
    )
    omega = _t(1.0, 2.5)
    small = torch.stack(
        [kernels.pad_kernel(kernels.sinc_kernel(s, omega[i : i + 1]), 21)[0] for i, s in enumerate(support.tolist())]
    )
    torch.testing.assert_close(kernels.sinc_kernel(21, omega, support=support), small, atol=1e-14, rtol=0)


def test_kernel_builders_check_their_inputs():
    with pytest.raises(ValueError, match="odd"):
        kernels.gaussian_kernel(8, _t(1.0))
    with pytest.raises(ValueError, match=r"shape \(2, 1\)"):
        kernels.gaussian_kernel(7, torch.ones(2, 1))
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        kernels.gaussian_kernel(7, torch.ones(2), torch.ones(3), torch.zeros(2))
    with pytest.raises(ValueError, match=">= 0"):
        kernels.gaussian_kernel(7, _t(-1.0))
    with pytest.raises(ValueError, match=r"\(0, pi\]"):
        kernels.sinc_kernel(7, _t(4.0))
    with pytest.raises(ValueError, match="odd sizes"):
        kernels.sinc_kernel(7, _t(1.0), support=torch.tensor([4]))
    with pytest.raises(ValueError, match=r"shape \(2, 4, 4\)"):
        kernels.kernel_moments(torch.ones(2, 4, 4))


def test_gaussian_kernel_gradcheck():
    def build(sx, sy, th, beta):
        return kernels.generalized_gaussian_kernel(5, sx, sy, th, beta)

    args = tuple(_t(*v).requires_grad_() for v in ((0.9, 1.4), (1.2, 0.7), (0.3, -0.5), (0.8, 1.7)))
    assert torch.autograd.gradcheck(build, args, fast_mode=True)


# ---------------------------------------------------------------------------------------------------------
# filtering


def test_delta_kernel_is_identity_for_every_border_and_size():
    x = torch.rand(2, 3, 5, 6, generator=_gen())
    delta = kernels.gaussian_kernel(21, torch.zeros(2))  # larger than the image
    for border in filtering.BORDERS:
        assert torch.equal(filtering.filter2d(x, delta, border), x), border


def test_per_sample_kernels_equal_filtering_each_sample_alone():
    x = torch.rand(3, 2, 12, 10, generator=_gen(), dtype=torch.float64)
    k = kernels.gaussian_kernel(7, _t(0.5, 1.5, 2.5), _t(2.0, 0.6, 1.0), _t(0.2, 1.1, 2.0))
    batched = filtering.filter2d(x, k)
    for i in range(3):
        torch.testing.assert_close(
            batched[i : i + 1], filtering.filter2d(x[i : i + 1], k[i : i + 1]), atol=1e-14, rtol=0
        )
    assert not torch.allclose(batched[0], filtering.filter2d(x[:1], k[1:2])[0])
    # A shared (1, k, k) kernel broadcasts over the batch.
    shared = filtering.filter2d(x, k[1:2])
    torch.testing.assert_close(shared[2:3], filtering.filter2d(x[2:3], k[1:2]), atol=1e-14, rtol=0)


def test_filter2d_correlates_with_reflect_101_border():
    x = torch.rand(1, 1, 9, 8, generator=_gen(), dtype=torch.float64)
    k = torch.rand(1, 3, 5, generator=_gen(1), dtype=torch.float64)  # asymmetric, rectangular
    expected = F.conv2d(F.pad(x, (2, 2, 1, 1), mode="reflect"), k.unsqueeze(1))
    torch.testing.assert_close(filtering.filter2d(x, k), expected, atol=1e-14, rtol=0)


def test_filter2d_matches_scipy_mirror_even_when_kernel_exceeds_image():
    ndimage = pytest.importorskip("scipy.ndimage")
    x = torch.rand(1, 1, 4, 6, generator=_gen(), dtype=torch.float64)
    k = torch.rand(1, 11, 9, generator=_gen(1), dtype=torch.float64)
    expected = ndimage.correlate(x[0, 0].numpy(), k[0].numpy(), mode="mirror")
    torch.testing.assert_close(filtering.filter2d(x, k)[0, 0], torch.from_numpy(expected), atol=1e-12, rtol=0)


def test_filter2d_checks_shapes_and_gradchecks():
    x = torch.rand(2, 3, 6, 6, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"shape \(2, 4, 4\)"):
        filtering.filter2d(x, torch.ones(2, 4, 4))
    with pytest.raises(ValueError, match=r"shape \(3, 3, 3\)"):
        filtering.filter2d(x, torch.ones(3, 3, 3))
    with pytest.raises(ValueError, match=r"shape \(3, 6, 6\)"):
        filtering.filter2d(x[0], torch.ones(1, 3, 3))
    xs = torch.rand(2, 1, 5, 4, dtype=torch.float64, requires_grad=True)
    ks = torch.rand(2, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(filtering.filter2d, (xs, ks), fast_mode=True)


def test_fft_path_equals_direct_correlation_for_large_kernels():
    # 64x70 planes and 11x15 taps take the FFT path; a per-sample asymmetric kernel checks the flip and the
    # offsets, float64 checks that nothing is lost beyond rounding.
    assert 11 * 15 >= filtering.FFT_MIN_TAPS and 64 * 70 >= filtering.FFT_MIN_PIXELS
    x = torch.rand(2, 3, 64, 70, generator=_gen(), dtype=torch.float64)
    k = torch.rand(2, 11, 15, generator=_gen(1), dtype=torch.float64)
    k = k / k.sum(dim=(-2, -1), keepdim=True)
    out = filtering.filter2d(x, k)
    for b in range(2):
        xp = F.pad(x[b : b + 1], (7, 7, 5, 5), mode="reflect")
        direct = F.conv2d(xp.transpose(0, 1), k[b].reshape(1, 1, 11, 15)).transpose(0, 1)
        torch.testing.assert_close(out[b : b + 1], direct, atol=1e-12, rtol=0)
    # float32 stays within 1e-5 of the direct path, and the result is deterministic.
    x32, k32 = x.float(), k.float()
    torch.testing.assert_close(filtering.filter2d(x32, k32), out.float(), atol=1e-5, rtol=0)
    assert torch.equal(filtering.filter2d(x32, k32), filtering.filter2d(x32, k32))


def test_fft_size_has_only_small_prime_factors():
    for n in (1, 7, 64, 97, 277, 1031):
        m = filtering._fft_size(n)
        assert m >= n and all(filtering._fft_size(v) != v for v in range(n, m))
        for p in (2, 3, 5):
            while m % p == 0:
                m //= p
        assert m == 1


def test_fft_path_gradcheck():
    xs = torch.rand(1, 1, 64, 64, dtype=torch.float64, requires_grad=True)
    ks = torch.rand(1, 9, 9, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(filtering.filter2d, (xs, ks), fast_mode=True)


# ---------------------------------------------------------------------------------------------------------
# noise


def test_gaussian_noise_has_requested_std_per_sample():
    x = torch.full((3, 3, 128, 128), 0.5)
    sigma = torch.tensor([2.0, 10.0, 25.0]) / 255
    out = noise.gaussian_noise(x, sigma, generator=_gen())
    std = (out - x).flatten(1).std(dim=1)
    torch.testing.assert_close(std, sigma, rtol=0.03, atol=0)
    # Colour noise: channels independent.
    n = (out - x)[2].flatten(1)
    assert abs(float(torch.corrcoef(n)[0, 1])) < 0.05


def test_gray_noise_is_identical_across_channels_and_samples_differ():
    x = torch.full((2, 3, 32, 32), 0.5)
    sigma = torch.full((2,), 0.05)
    out = noise.gaussian_noise(x, sigma, generator=_gen(), gray=torch.tensor([True, False]))
    assert torch.equal(out[0, 0], out[0, 1]) and torch.equal(out[0, 0], out[0, 2])
    assert not torch.equal(out[1, 0], out[1, 1])
    gray_both = noise.gaussian_noise(x, sigma, generator=_gen(), gray=torch.tensor([True, True]))
    assert not torch.equal(gray_both[0], gray_both[1])  # each sample has its own gray field


def test_correlated_noise_has_requested_channel_covariance():
    sigma = torch.tensor([0.05, 0.08], dtype=torch.float64)
    cov = noise.random_channel_covariance(sigma, generator=_gen(3))
    assert torch.linalg.eigvalsh(cov).min() >= -1e-15  # PSD by construction
    assert (torch.diagonal(cov, dim1=1, dim2=2) <= sigma.view(2, 1) ** 2 + 1e-15).all()
    x = torch.full((2, 3, 128, 128), 0.5, dtype=torch.float64)
    out = noise.correlated_gaussian_noise(x, cov, generator=_gen(), clip=False)
    for i in range(2):
        measured = torch.cov((out - x)[i].flatten(1))
        torch.testing.assert_close(measured, cov[i], atol=0.03 * float(sigma[i]) ** 2, rtol=0)


def test_poisson_noise_variance_scales_with_intensity():
    levels = torch.tensor([0.1, 0.4, 0.8])
    x = levels.view(3, 1, 1, 1).expand(3, 3, 96, 96).contiguous()
    scale, peak = torch.full((3,), 1.5), torch.full((3,), 256.0)
    out = noise.poisson_noise(x, scale, generator=_gen(), peak=peak, clip=False)
    var = (out - x).flatten(1).var(dim=1)
    torch.testing.assert_close(var, scale**2 * levels / peak, rtol=0.05, atol=0)
    # Default peak: Real-ESRGAN's 2 ** ceil(log2(#distinct 8-bit values)): 1 value -> 1, 10 values -> 16.
    assert noise.poisson_peak(x).tolist() == [1.0, 1.0, 1.0]
    ramp = (torch.arange(10.0) / 255).view(1, 1, 1, 10).expand(1, 3, 4, 10)
    assert noise.poisson_peak(ramp).tolist() == [16.0]


def test_gray_poisson_noise_follows_luma_and_is_shared_by_channels():
    x = torch.tensor([0.9, 0.1, 0.1]).view(1, 3, 1, 1).expand(2, 3, 96, 96).contiguous()
    gray = torch.tensor([True, False])
    out = noise.poisson_noise(x, torch.ones(2), generator=_gen(), gray=gray, peak=torch.full((2,), 64.0), clip=False)
    n = out - x
    torch.testing.assert_close(n[0, 0], n[0, 1], atol=1e-6, rtol=0)
    torch.testing.assert_close(n[0, 1], n[0, 2], atol=1e-6, rtol=0)
    luma = 0.299 * 0.9 + 0.587 * 0.1 + 0.114 * 0.1
    assert float(n[0, 0].var()) == pytest.approx(luma / 64, rel=0.06)
    assert float(n[1, 0].var()) == pytest.approx(0.9 / 64, rel=0.06)  # colour: each channel its own level
    assert float(n[1, 1].var()) == pytest.approx(0.1 / 64, rel=0.06)


def test_same_seed_replays_bit_identically_and_seeds_differ():
    x = _smooth_image(2, 24, 24)
    sigma = torch.tensor([0.03, 0.03])
    gray = torch.tensor([False, True])
    cam = camera.random_camera_params(2, generator=_gen(9))
    cov = noise.random_channel_covariance(sigma, generator=_gen(9))
    ops = {
        "gauss": lambda g: noise.gaussian_noise(x, sigma, generator=g, gray=gray),
        "corr": lambda g: noise.correlated_gaussian_noise(x, cov, generator=g),
        "poisson": lambda g: noise.poisson_noise(x, torch.ones(2), generator=g, gray=gray),
        "camera": lambda g: camera.camera_sensor_noise(x, generator=g, **cam),
    }
    for name, op in ops.items():
        a, b, c = op(_gen(5)), op(_gen(5)), op(_gen(6))
        assert torch.equal(a, b), name
        assert not torch.equal(a, c), name
        assert not torch.equal(a[0] - x[0], a[1] - x[1]), name  # samples in one batch get their own noise
        assert a.shape == x.shape and a.dtype == x.dtype and 0 <= float(a.min()) and float(a.max()) <= 1, name
    again = camera.random_camera_params(2, generator=_gen(9))
    assert all(torch.equal(cam[name], again[name]) for name in cam)


def test_noise_checks_parameter_shapes():
    x = torch.rand(2, 3, 8, 8)
    with pytest.raises(ValueError, match=r"shape \(2,\).*got \(3,\)"):
        noise.gaussian_noise(x, torch.ones(3), generator=_gen())
    with pytest.raises(ValueError, match=r"shape \(3, 8, 8\)"):
        noise.gaussian_noise(x[0], torch.ones(2), generator=_gen())
    with pytest.raises(ValueError, match=r"shape \(2, 3, 3\)"):
        noise.correlated_gaussian_noise(x, torch.eye(3).expand(1, 3, 3), generator=_gen())
    with pytest.raises(TypeError, match="Generator"):
        noise.gaussian_noise(x, torch.ones(2), generator=0)


def test_demosaic_is_exact_on_flat_colours_and_mosaic_is_rggb():
    colour = torch.tensor([0.2, 0.5, 0.7], dtype=torch.float64).view(1, 3, 1, 1).expand(1, 3, 7, 6)
    raw = camera.mosaic(colour)
    assert raw[0, 0, 0, :4].tolist() == pytest.approx([0.2, 0.5, 0.2, 0.5])
    assert raw[0, 0, 1, :4].tolist() == pytest.approx([0.5, 0.7, 0.5, 0.7])
    torch.testing.assert_close(camera.demosaic(raw), colour, atol=1e-14, rtol=0)
    # Channels that are affine in position come back exactly, borders included.
    yy, xx = torch.meshgrid(*(torch.arange(n, dtype=torch.float64) for n in (9, 8)), indexing="ij")
    ramp = torch.stack([0.3 + 0.02 * xx - 0.01 * yy, 0.5 - 0.03 * xx + 0.02 * yy, 0.2 + 0.01 * (xx + yy)])[None]
    torch.testing.assert_close(camera.demosaic(camera.mosaic(ramp)), ramp, atol=1e-14, rtol=0)
    # On a smooth image the demosaicing error is small.
    smooth = _smooth_image(dtype=torch.float64)
    assert float((camera.demosaic(camera.mosaic(smooth)) - smooth).abs().max()) < 0.02


def test_isp_round_trip_without_noise_and_noise_grows_with_shot():
    params = camera.random_camera_params(3, generator=_gen(4), dtype=torch.float64)
    params["brightness"] = torch.tensor([1.0, 1.1, 1.25], dtype=torch.float64)  # >= 1: nothing saturates
    isp = {k: v for k, v in params.items() if k not in ("shot", "read")}
    flat = torch.tensor([0.2, 0.5, 0.7], dtype=torch.float64).view(1, 3, 1, 1).expand(3, 3, 6, 6)
    torch.testing.assert_close(camera.process(camera.unprocess(flat, **isp), **isp), flat, atol=1e-10, rtol=0)
    smooth = _smooth_image(3, dtype=torch.float64)
    zero = torch.zeros(3, dtype=torch.float64)
    clean = camera.camera_sensor_noise(smooth, generator=_gen(), shot=zero, read=zero, **isp)
    assert float((clean - smooth).abs().mean()) < 0.005 and float((clean - smooth).abs().max()) < 0.05
    errors = []
    for shot in (1e-4, 1e-3, 1e-2):
        s = torch.full((3,), shot, dtype=torch.float64)
        noisy = camera.camera_sensor_noise(smooth, generator=_gen(), shot=s, read=s * 1e-2, **isp)
        errors.append(float((noisy - clean).pow(2).mean().sqrt()))
    assert errors[0] < errors[1] < errors[2], errors
    assert errors[2] > 0.02  # visible noise at the top of Brooks' shot range


# ---------------------------------------------------------------------------------------------------------
# jpeg


def test_jpeg_lower_quality_loses_more_per_sample():
    x = _smooth_image(1, 48, 48, dtype=torch.float64)
    x = (x + 0.1 * torch.rand(1, 3, 48, 48, generator=_gen(), dtype=torch.float64)).clamp(0, 1)
    qualities = torch.tensor([10, 30, 60, 95])
    out = jpeg.jpeg(x.expand(4, 3, 48, 48), qualities)
    assert out.dtype == torch.float64 and out.shape == (4, 3, 48, 48)
    assert torch.equal(out * 255, (out * 255).round())  # decoded 8-bit values
    err = (out - x).pow(2).mean(dim=(1, 2, 3)).tolist()
    assert err[0] > err[1] > err[2] > err[3], err
    # Each sample uses its own quality: equal to compressing it alone.
    assert torch.equal(out[1:2], jpeg.jpeg(x, qualities[1:2]))


def test_jpeg_subsampling_gray_straight_through_and_checks():
    x = _smooth_image(1, 32, 32)
    x[:, 0, :, 16:] = 1.0  # a sharp red edge: chroma subsampling blurs it
    q = torch.tensor([95.0])
    e420 = (jpeg.jpeg(x, q) - x).abs().mean()
    e444 = (jpeg.jpeg(x, q, subsampling="4:4:4") - x).abs().mean()
    assert e444 < e420
    gray = jpeg.jpeg(x[:, :1], torch.tensor([50]))
    assert gray.shape == (1, 1, 32, 32)
    xg = x.clone().requires_grad_()
    jpeg.jpeg(xg, q, straight_through=True).sum().backward()
    assert torch.equal(xg.grad, torch.ones_like(x))
    with pytest.raises(ValueError, match="whole numbers"):
        jpeg.jpeg(x, torch.tensor([50.5]))
    with pytest.raises(ValueError, match=r"\[1, 100\]"):
        jpeg.jpeg(x, torch.tensor([0]))
    with pytest.raises(ValueError, match=r"shape \(1, 4, 32, 32\)"):
        jpeg.jpeg(torch.rand(1, 4, 32, 32), torch.tensor([50]))


def test_quantization_tables_are_the_ones_pillow_writes():
    import io

    import numpy as np
    from PIL import Image

    qualities = [5, 30, 49, 77, 95]
    luma, chroma = jpeg.quantization_tables(torch.tensor(qualities))
    for i, q in enumerate(qualities):
        buffer = io.BytesIO()
        Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(buffer, format="JPEG", quality=q)
        buffer.seek(0)
        with Image.open(buffer) as decoded:
            tables = decoded.quantization
        assert list(tables[0]) == luma[i].flatten().int().tolist(), q
        assert list(tables[1]) == chroma[i].flatten().int().tolist(), q


def test_differentiable_jpeg_is_close_to_pillow_and_has_gradients():
    x = _smooth_image(1, 40, 44, dtype=torch.float64)  # not a multiple of 16: exercises MCU padding
    x = (x + 0.1 * torch.rand(1, 3, 40, 44, generator=_gen(), dtype=torch.float64)).clamp(0, 1).expand(3, 3, 40, 44)
    quality = torch.tensor([20.0, 50.0, 90.0], dtype=torch.float64)
    real = jpeg.jpeg(x, quality)
    xg = x.clone().requires_grad_()
    model = jpeg.jpeg_differentiable(xg, quality)
    psnr = -10 * torch.log10((model - real).pow(2).mean(dim=(1, 2, 3)))
    assert (psnr > 38).all(), psnr  # far closer to Pillow than either is to x
    assert ((model - x).pow(2).mean(dim=(1, 2, 3)) > (real - model).pow(2).mean(dim=(1, 2, 3)) * 10).all()
    model.sum().backward()
    assert torch.isfinite(xg.grad).all() and xg.grad.abs().sum() > 0


def test_unsharp_mask_equals_a_direct_reference_and_keeps_flat_regions():
    """Real-ESRGAN's target sharpening: blur with a 51-tap Gaussian of sigma 8 (OpenCV's choice for sigma 0),
    sharpen by half the residual and blend by the blurred mask of |residual| > 10 / 255. Checked against
    scipy's mirror correlation (a separate code path); a one-off check against OpenCV's GaussianBlur agreed
    to 2.4e-7."""
    ndimage = pytest.importorskip("scipy.ndimage")
    x = torch.rand(1, 3, 40, 57, generator=_gen(), dtype=torch.float64) ** 2
    x[..., 10:30, 20:45] = 0.7
    taps = torch.exp(-((torch.arange(51, dtype=torch.float64) - 25) ** 2) / (2 * 8.0**2))
    taps = (taps / taps.sum()).numpy()

    def blur(a):
        return ndimage.correlate1d(ndimage.correlate1d(a, taps, axis=-1, mode="mirror"), taps, axis=-2, mode="mirror")

    img = x[0].numpy()
    residual = img - blur(img)
    mask = blur((abs(residual) > 10 / 255).astype(float))
    expected = mask * (img + 0.5 * residual).clip(0, 1) + (1 - mask) * img
    torch.testing.assert_close(filtering.unsharp_mask(x)[0], torch.from_numpy(expected), atol=1e-12, rtol=0)
    flat = torch.full((1, 3, 16, 16), 0.4, dtype=torch.float64)
    assert torch.equal(filtering.unsharp_mask(flat), flat)
    with pytest.raises(ValueError, match="odd"):
        filtering.unsharp_mask(x, size=50)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_unsharp_mask_stays_in_the_unit_range(dtype):
    # A near-black / white checkerboard: the blurred mask sums to 1 + rounding and, unclamped, the blend of a
    # dark pixel sharpened to 0 came out at -1e-9 (float32) or -3e-18 (float64), which the degradation
    # pipelines reject as out of range.
    x = torch.ones(1, 3, 60, 60, dtype=dtype)
    x[..., ::2, ::2] = x[..., 1::2, 1::2] = 1 / 255
    y = filtering.unsharp_mask(x)
    assert y.min() == 0 and y.max() == 1
