"""KernelGAN (anyres.degrade.learned.kernelgan and its CLI): kernel extraction, regularisers, post-processing, the x4
kernel, sizes, determinism, recovery of a known kernel, and the estimate-kernel command."""

import json
import math

import click
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from PIL import Image
from scipy.signal import convolve2d, correlate2d

from anyres.cli.estimate_kernel import PICTURE_BLOCK, estimate_kernel_command
from anyres.degrade.learned import kernelgan as kg
from anyres.degrade.learned.kernelgan.estimate import _adam, _set_grads
from anyres.ops.filtering import filter2d
from anyres.ops.kernels import gaussian_kernel, kernel_centroid
from anyres.ops.resize import imresize

# Tiny ops: with 2 threads on a shared 2-core machine every step here was ~50x slower.
pytestmark = pytest.mark.usefixtures("one_thread")


def dead_leaves(size: int, seed: int, discs: int = 5000) -> torch.Tensor:
    """(1, 3, size, size) dead-leaves image in [0, 1]: opaque discs of random colour, radii with density
    ~ r^-3 (1.5..40 px). The model is scale invariant, which is the cross-scale recurrence KernelGAN needs."""
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(discs, generator=g, dtype=torch.float64)
    lo, hi = 1.5**-2, 40.0**-2
    radius = (lo - u * (lo - hi)) ** -0.5
    centre = torch.rand(discs, 2, generator=g, dtype=torch.float64) * size
    colour = torch.rand(discs, 3, generator=g)
    img = torch.full((3, size, size), 0.5)
    free = torch.ones(size, size, dtype=torch.bool)
    for (cy, cx), r, c in zip(centre.tolist(), radius.tolist(), colour):  # front to back
        y0, y1 = max(0, int(cy - r)), min(size, int(cy + r) + 2)
        x0, x1 = max(0, int(cx - r)), min(size, int(cx + r) + 2)
        if y0 >= y1 or x0 >= x1:
            continue
        yy = torch.arange(y0, y1, dtype=torch.float64)[:, None] - cy
        xx = torch.arange(x0, x1, dtype=torch.float64)[None, :] - cx
        inside = (yy * yy + xx * xx <= r * r) & free[y0:y1, x0:x1]
        img[:, y0:y1, x0:x1][:, inside] = c[:, None]
        free[y0:y1, x0:x1] &= ~inside
    return img[None]


def quantise(x: torch.Tensor) -> torch.Tensor:
    return (x.clamp(0, 1) * 255).round() / 255


# ------------------------------------------------------------------------------------------ generator


def _zero_generator() -> kg.KernelGenerator:
    net = kg.KernelGenerator().double()
    with torch.no_grad():
        for w in net.weights:
            w.zero_()
    return net


def test_extracted_kernel_is_the_filter_the_weights_realise():
    rng = np.random.default_rng(0)
    f, g, h = rng.normal(size=(7, 7)), rng.normal(size=(5, 5)), rng.normal(size=(3, 3))
    f2, g2, h2 = rng.normal(size=(7, 7)), rng.normal(size=(5, 5)), rng.normal(size=(3, 3))
    net = _zero_generator()
    w = net.weights
    with torch.no_grad():  # two independent paths, through channels 0 and 1
        w[0][0, 0], w[1][0, 0], w[2][0, 0] = map(torch.from_numpy, (f, g, h))
        w[3][0, 0], w[4][0, 0], w[5][0, 0] = 1.0, 1.0, 1.0
        w[0][1, 0], w[1][1, 1], w[2][1, 1] = map(torch.from_numpy, (f2, g2, h2))
        w[3][1, 1], w[4][1, 1], w[5][0, 1] = 2.0, -0.5, 3.0
    # A chain of correlations is one correlation with the full convolution of the filters.
    expected = convolve2d(convolve2d(f, g), h) + (2.0 * -0.5 * 3.0) * convolve2d(convolve2d(f2, g2), h2)
    np.testing.assert_allclose(net.kernel().detach().numpy(), expected, rtol=0, atol=1e-12)

    x = torch.from_numpy(rng.normal(size=(1, 3, 40, 36)))
    want = np.stack([correlate2d(x[0, c].numpy(), expected, mode="valid")[::2, ::2] for c in range(3)])[None]
    np.testing.assert_allclose(net(x).detach().numpy(), want, rtol=0, atol=1e-10)
    np.testing.assert_allclose(net.forward_layers(x).detach().numpy(), want, rtol=0, atol=1e-10)


def test_kernel_equals_a_delta_pushed_through_the_layers_and_forward_equals_the_layers():
    net = kg.KernelGenerator(generator=torch.Generator().manual_seed(1)).double()
    with torch.no_grad():
        for w in net.weights:
            w.mul_(20.0)  # O(1) taps, so the comparison is not trivially between tiny numbers
    delta = torch.zeros(1, 1, 25, 25, dtype=torch.float64)
    delta[0, 0, 12, 12] = 1.0
    y = delta
    for w in net.weights:
        y = F.conv2d(y, w)
    response = y[0, 0].flip(0, 1)  # conv2d correlates, so the impulse response is the kernel flipped
    kernel = net.kernel()
    assert kernel.abs().max() > 1e-2
    torch.testing.assert_close(kernel, response, rtol=1e-10, atol=1e-12)
    x = torch.randn(2, 3, 64, 64, dtype=torch.float64)
    torch.testing.assert_close(net(x), net.forward_layers(x), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("crop", [64, 50, 33])
def test_generator_and_discriminator_output_sizes(crop):
    net = kg.KernelGenerator(generator=torch.Generator().manual_seed(0))
    d_net = kg.PatchDiscriminator(generator=torch.Generator().manual_seed(0))
    x = torch.rand(1, 3, crop, crop + 3)
    side = ((crop - 13) // 2 + 1, (crop + 3 - 13) // 2 + 1)
    assert net(x).shape == net.forward_layers(x).shape == (1, 3, *side)
    assert d_net(net(x)).shape == (1, 1, side[0] - 6, side[1] - 6)
    cfg = kg.KernelGANConfig()
    assert (cfg.g_kernel_size, cfg.d_crop, kg.min_image_side(cfg)) == (13, 26, 84)


def test_discriminator_batch_is_per_sample():
    d_net = kg.PatchDiscriminator(generator=torch.Generator().manual_seed(0))
    a, b = torch.rand(1, 3, 26, 26), torch.rand(1, 3, 26, 26) * 0.1
    both = d_net(torch.cat([a, b]))
    torch.testing.assert_close(both, torch.cat([d_net(a), d_net(b)]), rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------------ losses


def _hand_kernel() -> torch.Tensor:
    k = torch.zeros(13, 13, dtype=torch.float64)
    k[6, 6], k[0, 0], k[6, 12], k[3, 3] = 0.5, 0.25, 0.25, -0.1  # sum 0.9
    return k


def test_regularisers_match_hand_computed_values():
    k = _hand_kernel()
    assert kg.sum_to_one_loss(k).item() == pytest.approx(0.1, abs=1e-12)

    mask = kg.boundary_mask(13, dtype=torch.float64)
    m00 = 30 * (1 - math.exp(-72 / 338))  # offset (6, 6), Gaussian with sigma = 13: exp(-d^2 / (2 * 169))
    m6_12 = 30 * (1 - math.exp(-36 / 338))  # offset (0, 6)
    assert mask[0, 0].item() == pytest.approx(m00) and mask[6, 12].item() == pytest.approx(m6_12)
    assert mask[1, 6].item() == pytest.approx(30 * (1 - math.exp(-25 / 338)))
    assert mask[2:11, 2:11].abs().sum() == 0 and mask[2, 1] > 0  # the outer 2-px ring only
    assert kg.boundary_loss(k, mask).item() == pytest.approx((0.25 * m00 + 0.25 * m6_12) / 169)
    assert kg.boundary_mask(7).abs().sum() == 0  # too small for a ring

    want = (0.5**0.2 + 2 * 0.25**0.2 + 0.1**0.2) / 169
    assert kg.sparsity_loss(k).item() == pytest.approx(want)

    assert kg.centre_target(13, 2) == 6.5 and kg.centre_target(12, 2) == 7.0
    row, col = (0.5 * 6 + 0.25 * 0 + 0.25 * 6 - 0.1 * 3) / 0.9, (0.5 * 6 + 0.25 * 0 + 0.25 * 12 - 0.1 * 3) / 0.9
    assert kg.centre_loss(k, 6.5).item() == pytest.approx(((row - 6.5) ** 2 + (col - 6.5) ** 2) / 2)

    pred = torch.tensor([[0.2, 0.9]])
    assert kg.adversarial_loss(pred, real=True).item() == pytest.approx(0.45)
    assert kg.adversarial_loss(pred, real=False).item() == pytest.approx(0.55)


def test_sparsity_gradient_is_finite_at_exact_zeros():
    k = _hand_kernel().requires_grad_(True)
    (grad,) = torch.autograd.grad(kg.sparsity_loss(k), k)
    assert torch.isfinite(grad).all() and grad[1, 1] == 0 and grad[6, 6] > 0


def test_bicubic_target_is_matlab_imresize_on_the_generator_grid():
    taps = kg.bicubic_x2_kernel(13, dtype=torch.float64).sum(0)  # separable: the 1-D taps
    np.testing.assert_allclose(
        taps[3:11].numpy(),
        [-0.01171875, -0.03515625, 0.11328125, 0.43359375, 0.43359375, 0.11328125, -0.03515625, -0.01171875],
        atol=1e-12,
    )
    x = torch.rand(1, 3, 64, 64, dtype=torch.float64)
    target = kg.bicubic_target(x, kg.bicubic_x2_kernel(13, dtype=torch.float64))
    torch.testing.assert_close(target, imresize(x, 0.5)[..., 3:29, 3:29], rtol=0, atol=1e-12)
    # The same kernel in the module's convention: filter2d + every 2nd sample is imresize away from borders.
    lr = filter2d(x, kg.bicubic_x2_kernel(13, dtype=torch.float64)[None])[..., ::2, ::2]
    torch.testing.assert_close(lr[..., 4:-4, 4:-4], imresize(x, 0.5)[..., 4:-4, 4:-4], rtol=0, atol=1e-12)


def test_schedule_follows_the_reference_learner():
    cfg = kg.KernelGANConfig()
    sched = kg.KernelGANSchedule(cfg)
    lrs, bics = [], []
    for it in range(3000):
        sched.update(it, 1.0 if it < 50 else 0.1)  # "similar to bicubic" from iteration 50 on
        lrs.append(sched.lr_scale)
        bics.append(sched.lambda_bicubic)
        if it == 399:
            assert (sched.lambda_sparse, sched.lambda_center) == (0.0, 0.0)
        if it == 400:
            assert (sched.lambda_sparse, sched.lambda_center) == (5.0, 1.0)
    assert sched.similar_to_bicubic
    assert bics[199] == 5.0 and bics[200] == pytest.approx(0.05) and bics[400] == pytest.approx(5e-4)
    assert bics[600] == pytest.approx(5e-6) and bics[-1] == pytest.approx(5e-6)
    assert lrs[749] == 1.0 and lrs[750] == pytest.approx(0.1) and lrs[-1] == pytest.approx(1e-3)


def test_fused_adam_sees_contiguous_gradients():
    # torch's fused CPU Adam ignores gradient strides; compose_kernel's gradients are transposed views.
    nets = [kg.KernelGenerator(generator=torch.Generator().manual_seed(0)) for _ in range(2)]
    cfg = kg.KernelGANConfig()
    fused = _adam(nets[0], cfg)
    plain = torch.optim.Adam(nets[1].parameters(), lr=cfg.lr, betas=cfg.betas)
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    bicubic = kg.bicubic_x2_kernel(13)
    for _ in range(3):
        for net, opt, contiguous in ((nets[0], fused, True), (nets[1], plain, False)):
            params = list(net.parameters())
            grads = torch.autograd.grad(kg.bicubic_loss(x, net(x), bicubic), params)
            if contiguous:
                _set_grads(params, grads)
            else:
                for p, g in zip(params, grads):
                    p.grad = g
            opt.step()
    for a, b in zip(nets[0].parameters(), nets[1].parameters()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-7)


def test_crops_are_drawn_where_the_edges_are():
    img = torch.zeros(1, 3, 120, 160)
    img[..., 100:] = 1.0  # one vertical edge between columns 99 and 100
    prob = kg.crop_probability(kg.gradient_map(img), 26)
    assert prob.sum().item() == pytest.approx(1.0) and prob[:, :13].sum() == 0 and prob[:, -13:].sum() == 0
    corners = kg.sample_crop_corners(prob, 26, 500, torch.Generator().manual_seed(0))
    top, left = corners[:, 0], corners[:, 1]
    assert (top % 2 == 0).all() and (left % 2 == 0).all()
    assert top.min() >= 0 and top.max() <= 120 - 26 and left.min() >= 0 and left.max() <= 160 - 26
    assert ((left <= 99) & (left + 26 > 100)).all()  # every crop contains the edge
    flat = kg.crop_probability(kg.gradient_map(torch.full((1, 3, 100, 100), 0.3)), 26)  # no edges: uniform
    assert flat[13:-13, 13:-13].std() < 1e-12 and flat.sum().item() == pytest.approx(1.0)


# ------------------------------------------------------------------------------------------ post-processing


def test_zero_small_taps_soft_thresholds_at_three_quarters_of_the_41st_largest():
    k = torch.arange(1.0, 50.0, dtype=torch.float64).reshape(7, 7)  # taps 1..49
    out = kg.zero_small_taps(k, keep=40)
    t = 0.75 * 9.0  # the 41st largest of 1..49 is 9
    want = (k - t).clamp_min(0)
    torch.testing.assert_close(out, want / want.sum())
    assert int((out > 0).sum()) == 49 - 6  # taps 1..6 fall to 0


@pytest.mark.parametrize("scale", [2, 4])
def test_shift_kernel_puts_the_centre_of_mass_at_the_scale_offset(scale):
    k = gaussian_kernel(11, torch.tensor([1.5]), torch.tensor([0.7]), torch.tensor([0.4]))[0].double()
    k = torch.roll(k, (1, -2), (0, 1))  # off centre by (-2, +1) px in (x, y)
    out = kg.shift_kernel(k, scale)
    assert out.shape[0] % 2 == 1 and out.shape[0] >= 15 and (out >= 0).all()
    assert out.sum().item() == pytest.approx(1.0)
    torch.testing.assert_close(
        kernel_centroid(out[None])[0], torch.full((2,), 0.5 * (scale - 1), dtype=out.dtype), rtol=0, atol=0.02
    )


def test_shift_kernel_leaves_an_aligned_kernel_alone():
    box = torch.zeros(11, 11, dtype=torch.float64)
    box[5:7, 5:7] = 0.25  # centre of mass already at +0.5
    torch.testing.assert_close(kg.shift_kernel(box, 2), F.pad(box, (2, 2, 2, 2)), rtol=0, atol=1e-12)


def test_analytic_x4_kernel_is_the_x2_kernel_convolved_with_its_dilated_copy():
    rng = np.random.default_rng(3)
    k2 = rng.random((13, 13)) * np.outer(np.hanning(13), np.hanning(13))
    k2 /= k2.sum()
    dilated = np.zeros((25, 25))
    dilated[::2, ::2] = k2
    full = convolve2d(k2, dilated)  # (37, 37)
    want = full[6:-6, 6:-6] / full[6:-6, 6:-6].sum()
    got = kg.analytic_x4_kernel(torch.from_numpy(k2))
    assert got.shape == (25, 25)
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-14)
    assert got.sum().item() == pytest.approx(1.0, abs=1e-12)
    batched = kg.analytic_x4_kernel(torch.stack([torch.from_numpy(k2), torch.from_numpy(k2).t()]))
    torch.testing.assert_close(batched[1], kg.analytic_x4_kernel(torch.from_numpy(k2).t()))


def test_analytic_x4_of_an_aligned_x2_kernel_is_aligned_for_x4():
    k2 = kg.shift_kernel(
        gaussian_kernel(13, torch.tensor([1.2]), torch.tensor([0.8]), torch.tensor([1.0]))[0].double(), 2
    )
    k4 = kg.analytic_x4_kernel(k2)
    assert k4.shape[0] == 2 * k2.shape[0] - 1
    torch.testing.assert_close(kernel_centroid(k4[None])[0], torch.full((2,), 1.5, dtype=k4.dtype), rtol=0, atol=1e-3)


# ------------------------------------------------------------------------------------------ estimation


@pytest.mark.slow
def test_same_seed_same_kernel_and_input_checks(tmp_path):
    img = quantise(imresize(dead_leaves(200, seed=5), 0.5))  # 100 x 100
    a = kg.estimate_kernel(img, iters=25, seed=3)
    b = kg.estimate_kernel(img[0], iters=25, seed=3)
    assert torch.equal(a, b)
    assert a.dim() == 2 and a.shape[0] % 2 == 1 and a.sum().item() == pytest.approx(1.0, abs=1e-5)
    assert not torch.equal(a, kg.estimate_kernel(img, iters=25, seed=4))
    path = tmp_path / "lr.png"
    Image.fromarray((img[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(path)
    assert torch.equal(kg.estimate_kernel(path, iters=25, seed=3), a)  # an 8-bit file reads back exactly

    with pytest.raises(ValueError, match="scale must be 2 or 4"):
        kg.estimate_kernel(img, scale=3, iters=1)
    with pytest.raises(ValueError, match=r"got shape \(2, 3, 100, 100\)"):
        kg.estimate_kernel(img.repeat(2, 1, 1, 1), iters=1)
    with pytest.raises(ValueError, match="must be in"):
        kg.estimate_kernel(img * 2, iters=1)
    with pytest.raises(kg.ImageTooSmallError, match="80x100 pixels; KernelGAN needs at least 84x84"):
        kg.estimate_kernel(img[..., :80], iters=1)


@pytest.mark.slow
def test_recovers_a_known_anisotropic_gaussian():
    """A dead-leaves HR (256 px) blurred by a known kernel and sampled by 2 gives a 128 px LR image.

    600 iterations with the schedule compressed 5x (learning-rate steps every 150, lambda steps every 40)
    keep it at ~10 s; the schedule's shape is the default's, and the default 3000 iterations do no better on
    such an image (relative error 0.10 at 600, 0.09 at 1000 compressed iterations, 0.20 at 3000; measured on
    an earlier dead-leaves variant). Tolerance: the estimate must be at least 4x closer to the truth (sum of
    squared tap differences) than MATLAB's bicubic kernel, what a non-blind method assumes, and its relative
    error sum((k - k_true)^2) / sum(k_true^2) must be below 0.25. Measured over four (image seed, training
    seed) pairs: 14-32x closer, relative error 0.07-0.16. With the fused-Adam stride bug above G never
    learns and the post-processed noise kernel scored 6x closer but relative error 0.39: the second bound
    is the one that tells a learnt kernel from a centred blob.
    """
    true = kg.shift_kernel(
        gaussian_kernel(13, torch.tensor([2.2]), torch.tensor([1.0]), torch.tensor([0.6]))[0].double(), 2
    )
    hr = dead_leaves(256, seed=0).double()
    lr = quantise(filter2d(hr, true[None])[..., ::2, ::2]).float()
    cfg = kg.KernelGANConfig(lr_every=150, lambda_every=40)
    est = kg.estimate_kernel(lr, iters=600, seed=0, config=cfg).double()

    side = est.shape[-1]
    assert side >= true.shape[-1]
    true_p = F.pad(true, [(side - true.shape[-1]) // 2] * 4)
    bicubic = kg.bicubic_x2_kernel(side, dtype=torch.float64)
    ssd = ((est - true_p) ** 2).sum().item()
    ssd_bicubic = ((bicubic - true_p) ** 2).sum().item()
    assert ssd < 0.25 * ssd_bicubic, (ssd, ssd_bicubic)
    assert ssd / (true_p**2).sum().item() < 0.25, ssd / (true_p**2).sum().item()


# ------------------------------------------------------------------------------------------ CLI


def _cli(*args):
    group = click.Group()  # cli.py is not this module's; register on a throwaway group
    group.add_command(estimate_kernel_command)
    return CliRunner().invoke(group, ["estimate-kernel", *[str(a) for a in args]])


def _png(path, size=(96, 96), seed=0):
    img = quantise(imresize(dead_leaves(2 * max(size), seed=seed), 0.5))[0, :, : size[1], : size[0]]
    Image.fromarray((img.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(path)
    return path


@pytest.mark.parametrize("scale", [2, 4])
def test_cli_json_contract(tmp_path, scale):
    src = _png(tmp_path / "in.png")
    out, pic, rec = tmp_path / "k.npy", tmp_path / "k.png", tmp_path / "k.json"
    res = _cli(src, "--scale", scale, "-o", out, "--png", pic, "--iters", 4, "--seed", 1, "--json", rec)
    assert res.exit_code == 0, res.output
    data = json.loads(rec.read_text())
    assert set(data) == {"scale", "kernel", "seconds", "iters"}
    assert data["scale"] == scale and data["iters"] == 4 and data["seconds"] > 0
    kernel = np.load(out)
    assert kernel.dtype == np.float32 and kernel.shape[0] % 2 == 1
    np.testing.assert_array_equal(np.asarray(data["kernel"], dtype=np.float32), kernel)
    assert kernel.sum() == pytest.approx(1.0, abs=1e-5)
    assert Image.open(pic).size == (kernel.shape[0] * PICTURE_BLOCK,) * 2
    # Same seed, default output beside the image: the same kernel.
    res = _cli(src, "--scale", scale, "--iters", 4, "--seed", 1)
    assert res.exit_code == 0, res.output
    np.testing.assert_array_equal(np.load(tmp_path / f"in_kernel_x{scale}.npy"), kernel)
    # Outputs are not replaced without --overwrite.
    res = _cli(src, "--scale", scale, "-o", out, "--iters", 1)
    assert res.exit_code == 1 and "already exists" in res.output


def _assert_one_line_error(res, *needles):
    assert res.exit_code == 1, res.output
    assert isinstance(res.exception, SystemExit)  # not a traceback
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("anyres: error: "), res.output
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_cli_one_line_errors(tmp_path):
    src = _png(tmp_path / "in.png")
    _assert_one_line_error(_cli(tmp_path / "missing.png"), "missing.png", "no such file")
    (tmp_path / "junk.png").write_bytes(b"not an image")
    _assert_one_line_error(_cli(tmp_path / "junk.png"), "junk.png")
    _assert_one_line_error(_cli(_png(tmp_path / "small.png", size=(90, 60))), "90x60", "at least 84x84")
    _assert_one_line_error(_cli(src, "--scale", 3), "--scale must be 2 or 4")
    _assert_one_line_error(_cli(src, "--scale", "two"), "--scale must be 2 or 4")
    _assert_one_line_error(_cli(src, "--png", src, "--iters", 1), "never overwritten")
    _assert_one_line_error(_cli(src, "-o", tmp_path / "k.txt"), ".npy")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png", "junk.png", "small.png"]
