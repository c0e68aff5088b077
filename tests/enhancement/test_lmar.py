"""LMAR (anyres.enhancement.lmar) and its losses (anyres.train.lmar_losses): shapes at integer and non-integer
scales, the chunked forward against the plain equations, exactly testable settings (the plain resize, a
delta kernel), save -> load, gradients, bounded memory on a 4000x3000 image, the losses' hand values and a
frozen enhancer."""

import json
import subprocess
import sys
import textwrap

import pytest
import torch

import anyres.enhancement.lmar  # noqa: F401  (registers "lmar")
from anyres.enhancement.deeplpf import DeepLPF
from anyres.enhancement.lmar import LMAR, LMARConfig
from anyres.enhancement.unet import UNetEnhancer
from anyres.hub import load_network, save_network
from anyres.ops.resize import imresize
from anyres.registry import NETWORKS
from anyres.train.lmar_losses import (
    LMARLossWeights,
    PatchDiscriminator,
    _match,
    attention_map,
    deeplpf_features,
    edge_loss,
    edge_weight,
    encoder_features,
    feature_attention_loss,
    freeze,
    lmar_discriminator_loss,
    lmar_generator_loss,
    lsgan_d_loss,
    lsgan_g_loss,
    resampling_consistency_loss,
    unet_enhancer_features,
)

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = {"hidden": [8, 8]}


def _plain(hr, size, kernel="lanczos3", antialias=False):
    return imresize(hr, size=size, kernel=kernel, antialias=antialias)


def _set_modulation(net, on_plain, on_compensation):
    eye = torch.eye(3, dtype=net.modulation.weight.dtype)
    with torch.no_grad():
        net.modulation.weight.copy_(torch.cat([on_plain * eye, on_compensation * eye], 1)[:, :, None, None])
        net.modulation.bias.zero_()


def _set_delta_kernel(net, ky, kx):
    """Force every pixel's kernel to copy input channel c at tap (ky, kx) into output channel c."""
    last = net.kernel_mlp[-1]
    k = net.config.kernel_size
    bias = torch.zeros(3 * k * k, 3, dtype=last.bias.dtype)
    for c in range(3):
        bias[c * k * k + ky * k + kx, c] = 1.0
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(bias.flatten())


# -- the network ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "hr_size,size",
    [
        ((24, 30), (16, 20)),  # x1.5
        ((23, 30), (10, 13)),  # x2.3
        ((32, 28), (8, 7)),  # x4
        ((20, 24), (20, 10)),  # x1 by x2.4 (aspect change)
        ((9, 9), (9, 9)),  # x1
        ((13, 11), (1, 1)),
    ],
)
def test_shapes_and_chunked_forward_equals_the_equations(hr_size, size):
    net = LMAR(**TINY).double()
    hr = torch.rand(2, 3, *hr_size, dtype=torch.float64)
    with torch.no_grad():
        out = net(hr, size, chunk_pixels=37)  # many chunks, a partial last one, rows split mid-kernel
        ref = net.forward_reference(hr, size)
        whole = net(hr, size, chunk_pixels=10**6)
    assert out.shape == (2, 3, *size) and out.dtype == torch.float64
    assert torch.isfinite(out).all()
    assert torch.allclose(out, ref, atol=1e-12)
    assert torch.allclose(whole, ref, atol=1e-12)


def test_float32_and_samples_independent():
    net = LMAR(**TINY)
    hr = torch.rand(3, 3, 17, 19)
    with torch.no_grad():
        out = net(hr, (7, 8), chunk_pixels=50)
        one = net(hr[1:2], (7, 8), chunk_pixels=50)
    assert out.dtype == torch.float32
    assert torch.allclose(out[1:2], one, atol=1e-6)
    assert torch.allclose(out, net.forward_reference(hr, (7, 8)), atol=1e-5)


def test_plain_branch_alone_is_the_reference_resize():
    """Modulation [I | 0]: x_c = D(x), Lanczos-3 without antialiasing (the default) or a configured kernel."""
    hr = torch.rand(1, 3, 23, 31, dtype=torch.float64)
    for config, kernel, antialias in [
        ({}, "lanczos3", False),
        ({"resize_kernel": "cubic", "antialias": True}, "cubic", True),
    ]:
        net = LMAR(**TINY, **config).double()
        _set_modulation(net, 1.0, 0.0)
        with torch.no_grad():
            out = net(hr, (10, 13), chunk_pixels=64)
        assert torch.allclose(out, _plain(hr, (10, 13), kernel, antialias), atol=1e-13)


def test_delta_kernels_fix_the_tap_layout_and_the_zero_border():
    hr = torch.rand(1, 3, 18, 21, dtype=torch.float64)
    size = (12, 9)
    net = LMAR(**TINY).double()
    _set_modulation(net, 0.0, 1.0)  # x_c = D(dx)
    _set_delta_kernel(net, 1, 1)  # centre tap: dx = x
    with torch.no_grad():
        assert torch.allclose(net(hr, size, chunk_pixels=40), _plain(hr, size), atol=1e-13)
    _set_delta_kernel(net, 1, 2)  # right-hand tap: dx[..., j] = x[..., j + 1], zero past the edge
    shifted = torch.zeros_like(hr)
    shifted[..., :-1] = hr[..., 1:]
    with torch.no_grad():
        assert torch.allclose(net(hr, size, chunk_pixels=40), _plain(shifted, size), atol=1e-13)
    _set_delta_kernel(net, 0, 1)  # tap above: dx[..., i, :] = x[..., i - 1, :] across chunk rows
    shifted = torch.zeros_like(hr)
    shifted[..., 1:, :] = hr[..., :-1, :]
    with torch.no_grad():
        assert torch.allclose(net(hr, size, chunk_pixels=40), _plain(shifted, size), atol=1e-13)


def test_softmax_kernels_are_convex_per_output_channel():
    net = LMAR(**TINY, kernel_norm="softmax")
    kern = net.kernels(torch.randn(2, 7, 5))
    assert kern.shape == (2, 27, 3, 5)
    assert (kern > 0).all() and torch.allclose(kern.sum(dim=1), torch.ones(2, 3, 5))


def test_default_parameter_count_and_untrained_output_is_near_the_plain_resize():
    net = LMAR()
    assert sum(p.numel() for p in net.parameters()) == 77_542  # MLP 7-128x5-81 with biases + 21 modulation
    hr = torch.rand(1, 3, 24, 24)
    with torch.no_grad():
        gap = (net(hr, (10, 10)) - _plain(hr, (10, 10))).abs().mean()
    assert 0 < gap < 0.1


@pytest.mark.parametrize("checkpoint", [False, True])
def test_gradients_reach_every_parameter(checkpoint):
    net = LMAR(kernel_size=5)
    hr = torch.rand(2, 3, 15, 14)
    net(hr, (7, 6), chunk_pixels=30, checkpoint=checkpoint).square().mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_checkpointed_gradients_equal_plain_ones():
    net = LMAR(**TINY).double()
    hr = torch.rand(1, 3, 11, 13, dtype=torch.float64, requires_grad=True)
    grads = []
    for checkpoint in (False, True):
        net.zero_grad()
        hr.grad = None
        net(hr, (5, 6), chunk_pixels=20, checkpoint=checkpoint).sin().sum().backward()
        grads.append([hr.grad.clone()] + [p.grad.clone() for p in net.parameters()])
    for a, b in zip(*grads):
        assert torch.allclose(a, b, atol=1e-12)


def test_save_load_round_trip_is_exact(tmp_path):
    net = NETWORKS.build(
        "lmar", hidden=[8, 8, 8], kernel_size=3, kernel_norm="softmax", resize_kernel="cubic", antialias=True
    )
    for p in net.parameters():
        p.data.normal_()
    save_network(net, tmp_path / "lmar", extra={"enhancer": "unet-enhancer"})
    loaded, config = load_network(tmp_path / "lmar")
    assert isinstance(loaded, LMAR) and config["arch"] == "lmar" and config["enhancer"] == "unet-enhancer"
    assert loaded.config == net.config
    hr = torch.rand(1, 3, 19, 16)
    with torch.no_grad():
        assert torch.equal(net(hr, (8, 9)), loaded(hr, (8, 9)))
    assert json.loads((tmp_path / "lmar" / "config.json").read_text())["hidden"] == [8, 8, 8]


@pytest.mark.parametrize(
    "bad",
    [
        {"hidden": []},
        {"kernel_size": 2},
        {"resize_kernel": "lanczos"},
        {"kernel_norm": "sum"},
        {"antialias": 1},
        {"width": 8},
    ],
)
def test_bad_configs_raise(bad):
    with pytest.raises(ValueError):
        LMARConfig.from_dict(bad)


@pytest.mark.parametrize(
    "hr,size",
    [
        (torch.rand(1, 3, 8, 8), (9, 4)),
        (torch.rand(1, 1, 8, 8), (4, 4)),
        (torch.rand(3, 8, 8), (4, 4)),
        (torch.rand(1, 3, 8, 8), (4.0, 4)),
    ],
)
def test_bad_calls_raise(hr, size):
    with pytest.raises(ValueError):
        LMAR(**TINY)(hr, size)


_MEMORY_SCRIPT = textwrap.dedent("""
    import json, resource, time
    import torch
    torch.set_num_threads(1)
    from anyres.enhancement.lmar import LMAR
    torch.manual_seed(0)
    net = LMAR(hidden=[8, 8])
    hr = torch.rand(1, 3, 3000, 4000)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    shapes, start = [], time.perf_counter()
    with torch.no_grad():
        for size in [(750, 1000), (1500, 2000)]:
            shapes.append(list(net(hr, size).shape))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"before_kib": before, "peak_kib": peak, "shapes": shapes,
                      "seconds": time.perf_counter() - start}))
""")


@pytest.mark.slow
def test_downscaling_a_4000x3000_image_stays_under_3_gb():
    """Peak RSS of a fresh process (import, the 144 MB input, both calls) measured with ru_maxrss (KiB on Linux)."""
    run = subprocess.run(
        [sys.executable, "-c", _MEMORY_SCRIPT], check=False, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout.strip().splitlines()[-1])
    print(
        f"\nLMAR 4000x3000 -> 1000x750 and 2000x1500: peak RSS {report['peak_kib'] / 1024:.0f} MiB "
        f"(before the calls {report['before_kib'] / 1024:.0f} MiB), {report['seconds']:.1f} s"
    )
    assert report["shapes"] == [[1, 3, 750, 1000], [1, 3, 1500, 2000]]
    assert report["peak_kib"] < 3 * 1024**2


# -- losses: hand values --------------------------------------------------------------------------------


def test_consistency_loss_hand_values():
    f_c = torch.tensor([0.5, 2.0, -0.2, 0.0]).view(1, 1, 2, 2)
    f_x = torch.zeros(1, 1, 2, 2)
    # SmoothL1 (beta 1): 0.5 d^2 below 1, |d| - 0.5 above: 0.125, 1.5, 0.02, 0
    assert resampling_consistency_loss([f_c], [f_x]).item() == pytest.approx((0.125 + 1.5 + 0.02) / 4)
    # a smaller map is Lanczos-resized to the target size first; a constant stays constant
    small = torch.full((2, 3, 2, 2), 0.4)
    assert resampling_consistency_loss([small], [torch.zeros(2, 3, 5, 6)]).item() == pytest.approx(0.08)
    # two maps: the mean of the two terms
    assert resampling_consistency_loss([f_c, small], [f_x, torch.zeros(2, 3, 5, 6)]).item() == pytest.approx(
        ((0.125 + 1.5 + 0.02) / 4 + 0.08) / 2
    )


def test_attention_loss_hand_values():
    f_c = torch.tensor([1.0, 0.0]).view(1, 1, 1, 2)
    f_x = torch.tensor([0.0, 2.0]).view(1, 1, 1, 2)
    # at = normalise([1, 0]) = [1, 0] and normalise([0, 4]) = [0, 1]: mean([1, 1]) = 1
    assert feature_attention_loss([f_c], [f_x]).item() == pytest.approx(1.0)
    two_channels = torch.tensor([[1.0, 1.0], [1.0, 3.0]]).view(1, 2, 1, 2)  # mean_c f^2 = [1, 5]
    assert attention_map(two_channels)[0].tolist() == pytest.approx([1 / 26**0.5, 5 / 26**0.5])
    flat = torch.ones(1, 4, 1, 2)  # at = [1, 1] / sqrt 2
    expected = ((1 / 26**0.5 - 2**-0.5) ** 2 + (5 / 26**0.5 - 2**-0.5) ** 2) / 2
    assert feature_attention_loss([two_channels], [flat[:, :2]]).item() == pytest.approx(expected)
    # invariant to a global scale of either map's features
    assert feature_attention_loss([3 * two_channels], [7 * flat[:, :2]]).item() == pytest.approx(expected)


def test_edge_weight_and_edge_loss_hand_values():
    hr = torch.zeros(1, 3, 5, 5)
    hr[..., 2:] = 1.0  # a vertical step between columns 1 and 2
    m = edge_weight(hr, (5, 5))
    # Scharr x: (3 + 10 + 3) * (right - left) = 16 on the two columns beside the step, 0 elsewhere
    expected = torch.zeros(5, 5)
    expected[:, 1:3] = 16.0
    assert torch.allclose(m[0, 0], expected)
    f_c, f_x = torch.full((1, 2, 5, 5), 0.5), torch.zeros(1, 2, 5, 5)
    assert edge_loss([f_c], [f_x], hr).item() == pytest.approx(0.5 * 16 * 10 / 25)


def test_lsgan_hand_values_and_patch_discriminator():
    fake, real = torch.tensor([0.0, 2.0]), torch.tensor([1.0, 0.0])
    assert lsgan_g_loss(fake).item() == pytest.approx(1.0)  # ((0-1)^2 + (2-1)^2) / 2
    assert lsgan_d_loss(real, fake).item() == pytest.approx(0.5 * (0.5 + 2.0))
    disc = PatchDiscriminator()
    assert sum(p.numel() for p in disc.parameters()) == 1040
    assert disc(torch.rand(2, 3, 32, 48)).shape == (2, 1, 2, 3)


# -- losses: the frozen enhancer ------------------------------------------------------------------------


def test_unet_adapter_is_its_encoder_level_and_crops_the_padding():
    net = UNetEnhancer(width=3, levels=4)
    x = torch.rand(1, 3, 32, 24)
    feat = unet_enhancer_features(net, x)[0]
    manual = net.down[0](x)
    for level in (1, 2):
        manual = net.down[level](torch.nn.functional.max_pool2d(manual, 2))
    assert torch.equal(feat, manual) and feat.shape == (1, 12, 8, 6)
    assert unet_enhancer_features(net, torch.rand(1, 3, 30, 21))[0].shape == (1, 12, 8, 6)  # ceil(30/4), ceil(21/4)


def test_deeplpf_adapter_is_its_backbone_level():
    net = DeepLPF(width=2, features=4, head_size=8)
    x = torch.rand(1, 3, 32, 48)  # multiples of 16, >= 32: no padding
    feat = deeplpf_features(net, x)[0]
    manual = net.backbone.down[0](x)
    for level in (1, 2):
        manual = net.backbone.down[level](torch.nn.functional.max_pool2d(manual, 2))
    assert torch.equal(feat, manual) and feat.shape == (1, 8, 8, 12)
    assert encoder_features(net)(torch.rand(1, 3, 20, 36))[0].shape == (1, 8, 5, 9)


def test_encoder_features_needs_an_adapter():
    with pytest.raises(TypeError):
        encoder_features(torch.nn.Conv2d(3, 3, 1))


@pytest.mark.parametrize(
    "enhancer_cls,kwargs",
    [(UNetEnhancer, {"width": 4, "levels": 3}), (DeepLPF, {"width": 2, "features": 4, "head_size": 8})],
)
def test_frozen_enhancer_gets_no_gradient_and_stays_unchanged(enhancer_cls, kwargs):
    enhancer = freeze(enhancer_cls(**kwargs))
    before = {k: v.clone() for k, v in enhancer.state_dict().items()}
    resampler = LMAR(**TINY)
    disc = PatchDiscriminator()
    opt = torch.optim.Adam(resampler.parameters(), lr=1e-2)
    hr = torch.rand(1, 3, 48, 48)
    size = (32, 32)
    x_c = resampler(hr, size)
    losses = lmar_generator_loss(x_c, hr, encoder_features(enhancer), disc)
    assert set(losses) == {"total", "consistency", "attention", "edge", "adversarial"}
    w = LMARLossWeights()
    assert losses["total"].item() == pytest.approx(
        losses["adversarial"].item()
        + losses["consistency"].item()
        + w.attention * losses["attention"].item()
        + losses["edge"].item(),
        rel=1e-5,
    )
    losses["total"].backward()
    assert all(p.grad is None for p in enhancer.parameters())
    for name, p in resampler.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    before_resampler = [p.detach().clone() for p in resampler.parameters()]
    opt.step()
    assert all(torch.equal(v, enhancer.state_dict()[k]) for k, v in before.items())
    assert all(not torch.equal(a, b) for a, b in zip(before_resampler, resampler.parameters()))
    # the discriminator's step sees x_c detached: no gradient reaches the resampler
    resampler.zero_grad()
    lmar_discriminator_loss(disc, x_c, _plain(hr, size)).backward()
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in resampler.parameters())
    assert all(p.grad is not None for p in disc.parameters())


def test_generator_loss_without_a_discriminator_needs_a_zero_adversarial_weight():
    enhancer = freeze(UNetEnhancer(width=2, levels=3))
    hr = torch.rand(1, 3, 16, 16)
    x_c = _plain(hr, (12, 12))
    with pytest.raises(ValueError):
        lmar_generator_loss(x_c, hr, encoder_features(enhancer))
    out = lmar_generator_loss(x_c, hr, encoder_features(enhancer), weights=LMARLossWeights(adversarial=0.0))
    assert "adversarial" not in out and torch.isfinite(out["total"])


def test_rms_feature_norm_makes_the_feature_terms_independent_of_the_encoders_scale():
    enhancer = freeze(UNetEnhancer(width=4, levels=3))
    encoder = encoder_features(enhancer)
    torch.manual_seed(0)
    hr = torch.rand(2, 3, 32, 32)
    x_c = _plain(hr, (20, 20)) + 0.05 * torch.rand(2, 3, 20, 20)
    weights = LMARLossWeights(adversarial=0.0)

    def scaled(x, c=1e-3):  # the same encoder with its channels shrunk 1000x and one channel 10x more
        f = encoder(x)[0] * c
        return [torch.cat([f[:, :1] * 10, f[:, 1:]], dim=1)]

    for name in ("consistency", "edge", "attention"):
        raw = lmar_generator_loss(x_c, hr, encoder, weights=weights)[name]
        small = lmar_generator_loss(x_c, hr, scaled, weights=weights)[name]
        normed = lmar_generator_loss(x_c, hr, encoder, weights=weights, feature_norm="rms")[name]
        normed_small = lmar_generator_loss(x_c, hr, scaled, weights=weights, feature_norm="rms")[name]
        torch.testing.assert_close(normed_small, normed, rtol=1e-4, atol=1e-9, msg=name)
        if name != "attention":  # the raw terms shrink with the features
            assert small < 0.1 * raw, name
    # by hand: the consistency term of rms-normalised maps (SmoothL1, beta 1)
    fx, fc = encoder(hr)[0], encoder(x_c)[0]
    s = fx.pow(2).mean(dim=(0, 2, 3), keepdim=True).sqrt()
    expected = torch.nn.functional.smooth_l1_loss(_match(fc / s, fx), fx / s)
    got = lmar_generator_loss(x_c, hr, encoder, weights=weights, feature_norm="rms")["consistency"]
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-9)
    with pytest.raises(ValueError, match="feature_norm"):
        lmar_generator_loss(x_c, hr, encoder, weights=weights, feature_norm="batch")


def test_colour_term_penalises_a_colour_cast_not_detail():
    enhancer = freeze(UNetEnhancer(width=2, levels=3))
    encoder = encoder_features(enhancer)
    torch.manual_seed(0)
    hr = torch.rand(2, 3, 16, 16)
    pooled = torch.nn.functional.avg_pool2d(hr, 2)  # keeps each image's mean colour exactly
    off = LMARLossWeights(adversarial=0.0)
    on = LMARLossWeights(adversarial=0.0, colour=10.0)
    assert "colour" not in lmar_generator_loss(pooled, hr, encoder, weights=off)  # the reference's objective
    assert float(lmar_generator_loss(pooled, hr, encoder, weights=on)["colour"]) < 1e-6
    # zero-mean detail keeps the mean colour: no colour loss
    detail = torch.tensor([[1.0, -1.0], [-1.0, 1.0]]).repeat(4, 4) * 0.05
    assert float(lmar_generator_loss(pooled + detail, hr, encoder, weights=on)["colour"]) < 1e-6
    # a blue cast of -0.03: one channel in three off by 0.03
    cast = pooled.clone()
    cast[:, 2] -= 0.03
    out = lmar_generator_loss(cast, hr, encoder, weights=on)
    torch.testing.assert_close(out["colour"], torch.tensor(0.01), atol=1e-6, rtol=0)
    without = lmar_generator_loss(cast, hr, encoder, weights=off)["total"]
    torch.testing.assert_close(out["total"], without + 10.0 * out["colour"])
    with pytest.raises(ValueError, match="colour"):
        LMARLossWeights(colour=-1.0)
