"""DeepLPF (anyres.enhancement.deeplpf) and its loss: layer counts, any size, gradients, save/load, explain, Lab, MS-SSIM."""

import json
import math

import pytest
import torch

import anyres.enhancement.deeplpf  # noqa: F401  (registers "deeplpf")
from anyres.enhancement import filters as lf
from anyres.enhancement.deeplpf import (
    MS_SSIM_WEIGHTS,
    DeepLPF,
    DeepLPFConfig,
    cubic_coefficients,
    deeplpf_loss,
    elliptical_parameters,
    graduated_parameters,
    ms_ssim,
    ssim_components,
)
from anyres.enhancement.deeplpf_backbone import _pad_for_backbone
from anyres.hub import load_network, save_network
from anyres.metrics import ssim as matlab_ssim
from anyres.ops.color_lab import lab_to_rgb, linear_to_srgb, rgb_to_lab, srgb_to_linear
from anyres.registry import NETWORKS

pytestmark = pytest.mark.usefixtures("one_thread")

F64 = torch.float64
TINY = {"width": 4, "features": 8, "head_size": 16}


def tiny(**overrides):
    return DeepLPF(DeepLPFConfig(**{**TINY, **overrides}))


def n_params(module):
    return sum(p.numel() for p in module.parameters())


# ---------------------------------------------------------------------------------------------------------
# Config and architecture


def test_config_is_validated_and_registered():
    assert DeepLPFConfig.from_dict({}) == DeepLPFConfig()
    with pytest.raises(ValueError, match="unknown DeepLPF config keys"):
        DeepLPFConfig.from_dict({"widht": 8})
    for bad in (
        {"fusion": "max"},
        {"width": 0},
        {"features": 3},
        {"head_size": 0},
        {"head_dropout": 1.0},
        {"graduated": 0},
        {"cubic_residual": 1},
        {"init": "xavier"},
    ):
        with pytest.raises(ValueError, match=next(iter(bad))):
            DeepLPFConfig.from_dict(bad)
    net = NETWORKS.build("deeplpf", **TINY)
    assert isinstance(net, DeepLPF) and net.config_dict() == {"arch": "deeplpf", **DeepLPFConfig(**TINY).__dict__}


def test_default_parameter_count_matches_the_released_layer_list():
    # Digest 1.2 / 1.3: U-Net (used layers) 1,265,623; heads 151,612 (cubic) and 149,272 (graduated, elliptical).
    net = DeepLPF()
    assert n_params(net.backbone) == 1_265_623
    assert n_params(net.cubic_head) == 151_612
    assert n_params(net.graduated_head) == n_params(net.elliptical_head) == 149_272
    assert n_params(net) == 1_715_779


def test_head_trace_at_300_is_the_reference_one():
    # 300 -> 150 -> 75 -> 38 -> 19 -> 10 -> 5 -> 3 (ceil-mode pools change nothing at 300: all pooled sizes even)
    net = DeepLPF(features=8)
    sizes, feat = [], torch.zeros(1, 8, 300, 300)
    for layer in net.cubic_head.convs:
        feat = layer(feat)
        if not isinstance(layer, torch.nn.LeakyReLU):
            sizes.append(feat.shape[-1])
    assert sizes == [150, 75, 38, 19, 10, 5, 3]


@pytest.mark.parametrize(
    "size,padded,mode",
    [
        ((37, 53), (48, 64), "reflect"),
        ((5, 7), (32, 32), "replicate"),
        ((32, 48), (32, 48), None),
        ((20, 40), (32, 48), "reflect"),
        ((16, 40), (32, 48), "replicate"),
    ],
)
def test_backbone_padding(size, padded, mode):
    x = torch.rand(1, 3, *size)
    out = _pad_for_backbone(x)
    assert tuple(out.shape[-2:]) == padded
    assert torch.equal(out[..., : size[0], : size[1]], x)
    if mode is None:
        assert out is x
    elif mode == "reflect":  # the first padded row mirrors the second-to-last real one
        assert torch.equal(out[..., size[0], : size[1]], x[..., size[0] - 2, :])
    else:
        assert torch.equal(out[..., -1, : size[1]], x[..., -1, :])


# ---------------------------------------------------------------------------------------------------------
# Forward, gradients, any size, batch independence, dtype


@pytest.mark.parametrize("size", [(37, 53), (5, 7), (1, 1), (32, 48)])
def test_forward_any_size_in_range(size):
    net = tiny().eval()
    x = torch.rand(2, 3, *size)
    with torch.no_grad():
        out = net(x)
    assert out.shape == x.shape and out.dtype == torch.float32
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1


def test_backward_reaches_every_parameter():
    net = tiny(init="default").train()
    out = net(torch.rand(2, 3, 19, 23))
    ((out - 0.3) ** 2).mean().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("fusion", ["sum", "deviation"])
def test_identity_init_returns_the_input_and_trains_every_parameter(fusion):
    torch.manual_seed(0)
    x = torch.rand(2, 3, 19, 23) * 0.9 + 0.05
    net = tiny(fusion=fusion).train()
    with torch.no_grad():
        torch.testing.assert_close(net(x), x, rtol=0, atol=1e-6)  # dropout cannot matter: the scale rows are 0
        assert (tiny(fusion=fusion, init="default").eval()(x) - x).abs().max() > 0.05
    # The zeroed layers block some gradients at the very first step only: after one SGD step every parameter
    # gets a gradient, and the loss went down. The target is darker: under "sum" fusion S starts at its upper
    # clamp (2), so at first the local filters can only darken (the published fusion's neutral point).
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    target = x * 0.7
    losses = []
    for _ in range(2):
        opt.zero_grad()
        loss = ((net(x) - target) ** 2).mean()
        loss.backward()
        losses.append(loss.item())
        opt.step()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert losses[1] < losses[0]


def test_samples_of_a_batch_are_independent():
    net = tiny().eval()
    x = torch.rand(3, 3, 21, 18)
    with torch.no_grad():
        full = net(x)
        alone = torch.cat([net(x[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(full, alone, rtol=0, atol=1e-5)


def test_float64_and_input_checks():
    net = tiny().double().eval()
    out = net(torch.rand(1, 3, 9, 10, dtype=F64))
    assert out.dtype == F64
    with pytest.raises(ValueError, match=r"\(1, 4, 9, 10\)"):
        net(torch.rand(1, 4, 9, 10, dtype=F64))


@pytest.mark.parametrize("fusion", ["sum", "deviation"])
def test_neutral_heads_compose_as_documented(fusion):
    # Zero head outputs: cubic f = 0 (Y2 = clamp(Y1)), every scale 2 tanh01(0) = 1 (maps of ones), so S is 2
    # ("sum", neutral at 2) or 1 ("deviation"), and out = clamp(clamp(S Y2) + Y1).
    net = tiny(fusion=fusion).eval()
    for head in (net.cubic_head, net.graduated_head, net.elliptical_head):
        torch.nn.init.zeros_(head.fc.weight)
        torch.nn.init.zeros_(head.fc.bias)
    x = torch.rand(2, 3, 13, 17)
    with torch.no_grad():
        y1 = net.backbone(x)[:, :3]
        out = net(x)
        info = net.explain(x)
    s = 2.0 if fusion == "sum" else 1.0
    torch.testing.assert_close(out, torch.clamp(torch.clamp(s * y1.clamp(0, 1), 0, 1) + y1, 0, 1), rtol=0, atol=1e-6)
    assert torch.equal(info["maps"]["fused"], torch.full_like(out, s))
    p = info["parameters"][0]
    assert p["graduated"][0]["scale"] == [1.0, 1.0, 1.0] and p["graduated"][0]["invert"] == 0.0
    assert p["elliptical"][1]["angle"] == pytest.approx(math.pi / 2)


# ---------------------------------------------------------------------------------------------------------
# Bounding raw head outputs


def test_bounding_known_values_and_layout():
    n = 3
    raw = torch.zeros(2, 8 * n)
    raw[1, n + 1] = 0.7  # slope of instance 1
    raw[1, 0] = 0.2  # inversion logit of instance 0
    raw[1, 5 * n + 3 * 2 + 1] = 50.0  # scale of instance 2, green: saturates at 2
    raw[1, 3 * n] = -50.0  # offset1 of instance 0: the floor
    g = graduated_parameters(raw, n)
    assert g["slope"][1].tolist() == pytest.approx([0.0, 0.7, 0.0])
    assert g["invert"].tolist() == [[0, 0, 0], [1, 0, 0]]
    assert g["intercept"][0].tolist() == [0.5] * 3
    assert g["offset1"][1, 0].item() == pytest.approx(1e-3) and g["offset2"][0, 0].item() == pytest.approx(0.5005)
    assert g["scale"].shape == (2, n, 3) and g["scale"][1, 2].tolist() == [1.0, 2.0, 1.0]
    e = elliptical_parameters(raw, n)
    assert e["angle"][0].tolist() == pytest.approx([math.pi / 2] * 3)
    assert e["centre_x"][0].tolist() == [0.5] * 3 and e["semi_a"][0, 0].item() == pytest.approx(0.5005)
    coeffs = cubic_coefficients(torch.arange(120.0).view(2, 60))
    assert coeffs.shape == (2, 3, 20) and coeffs[1, 2, 0].item() == 100.0  # G starts at 20, B at 40
    with pytest.raises(ValueError, match=r"\(B, 24\)"):
        graduated_parameters(torch.zeros(1, 23), 3)


def test_inversion_bit_gets_a_straight_through_gradient():
    raw = torch.zeros(1, 8, requires_grad=True)
    with torch.no_grad():
        raw[0, 0] = 0.3
    graduated_parameters(raw, 1)["invert"].sum().backward()
    assert raw.grad[0, 0].item() == 0.5 and raw.grad[0, 1:].abs().sum() == 0


# ---------------------------------------------------------------------------------------------------------
# explain and save / load


def test_explain_is_json_and_rebuilds_the_maps():
    net = tiny().eval()
    x = torch.rand(2, 3, 11, 14)
    info = net.explain(x)
    params = info["parameters"]
    assert json.loads(json.dumps(params)) == params and len(params) == 2
    assert json.loads(json.dumps(info["cubic_terms"])) == [list(t) for t in lf.CUBIC_TERMS]
    with torch.no_grad():
        assert torch.equal(info["images"]["output"], net(x))
    for b, p in enumerate(params):
        assert len(p["graduated"]) == 3 and len(p["elliptical"]) == 3 and len(p["cubic"]) == 3
        assert all(
            g["invert"] in (0.0, 1.0) and g["offset1"] >= 1e-3 and 0 < g["intercept"] < 1 for g in p["graduated"]
        )
        grad = {
            k: torch.tensor([[g[k] for g in p["graduated"]]], dtype=F64)
            for k in ("slope", "intercept", "offset1", "offset2", "invert")
        }
        grad["scale"] = torch.tensor([[g["scale"] for g in p["graduated"]]], dtype=F64)
        ell = {
            k: torch.tensor([[e[k] for e in p["elliptical"]]], dtype=F64)
            for k in ("centre_x", "centre_y", "semi_a", "semi_b", "angle")
        }
        ell["scale"] = torch.tensor([[e["scale"] for e in p["elliptical"]]], dtype=F64)
        s_g = lf.combine_instances(lf.graduated_map(11, 14, **grad))
        s_e = lf.combine_instances(lf.elliptical_map(11, 14, **ell))
        torch.testing.assert_close(info["maps"]["graduated"][b : b + 1].double(), s_g, rtol=0, atol=1e-5)
        torch.testing.assert_close(info["maps"]["elliptical"][b : b + 1].double(), s_e, rtol=0, atol=1e-5)
        y1 = info["images"]["backbone"][b : b + 1].double()
        y2 = lf.cubic_filter(y1, torch.tensor([p["cubic"]], dtype=F64))
        torch.testing.assert_close(info["images"]["cubic"][b : b + 1].double(), y2, rtol=0, atol=1e-5)
    assert set(info["maps"]) == {"graduated", "elliptical", "fused"}
    assert all(m.shape == x.shape for m in info["maps"].values())


def test_save_load_round_trip_is_exact(tmp_path):
    net = tiny(head_size=None, fusion="deviation").eval()
    save_network(net, tmp_path / "m", extra={"name": "tiny-deeplpf"})
    loaded, config = load_network(tmp_path / "m")
    assert config["arch"] == "deeplpf" and config["name"] == "tiny-deeplpf" and config["head_size"] is None
    assert type(loaded) is DeepLPF and loaded.config == net.config
    for (k, a), (k2, b) in zip(net.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    x = torch.rand(1, 3, 17, 20)
    with torch.no_grad():
        assert torch.equal(net(x), loaded(x))
    assert (tmp_path / "m" / "model.safetensors").read_bytes()[8:9] == b"{"  # safetensors, not a pickle


# ---------------------------------------------------------------------------------------------------------
# CIELab


def _rgb(*colours):
    return torch.tensor(colours, dtype=F64).T.reshape(1, 3, len(colours), 1)


def test_lab_known_values():
    # sRGB D65 by hand: white (100, 0, 0), black 0; red L = 116 * 0.2126729^(1/3) - 16 = 53.2408,
    # a = 500 ((0.4124564 / 0.95047)^(1/3) - 0.2126729^(1/3)) = 80.0925, b = 67.2032; mid-grey 0.5 has
    # Y = ((0.5 + 0.055) / 1.055)^2.4 = 0.214041 and L = 53.3890.
    lab = rgb_to_lab(_rgb((1, 1, 1), (0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 1), (0.5, 0.5, 0.5)))[0, :, :, 0].T
    want = [
        (100, 0, 0),
        (0, 0, 0),
        (53.2408, 80.0925, 67.2032),
        (87.7347, -86.1827, 83.1793),
        (32.2970, 79.1875, -107.8602),
        (53.3890, 0, 0),
    ]
    for got, exp in zip(lab.tolist(), want):
        assert got == pytest.approx(exp, abs=2e-4)
    y = ((0.5 + 0.055) / 1.055) ** 2.4
    assert lab[5, 0].item() == pytest.approx(116 * y ** (1 / 3) - 16, abs=1e-9)


def test_lab_round_trips_and_has_finite_gradients():
    x = torch.rand(2, 3, 4, 5, dtype=F64)
    x[0, :, 0, 0] = 0.0  # black: the linear branches
    torch.testing.assert_close(lab_to_rgb(rgb_to_lab(x)), x, rtol=0, atol=1e-10)
    torch.testing.assert_close(linear_to_srgb(srgb_to_linear(x)), x, rtol=0, atol=1e-12)
    # the two segments of the sRGB curve meet at the knee
    knee = torch.full((1, 3, 1, 1), 0.04045, dtype=F64)
    assert srgb_to_linear(knee).flatten()[0].item() == pytest.approx(((0.04045 + 0.055) / 1.055) ** 2.4, rel=1e-4)
    v = x.clone().requires_grad_(True)
    rgb_to_lab(v).sum().backward()
    assert torch.isfinite(v.grad).all()
    inner = (torch.rand(1, 3, 2, 3, dtype=F64) * 0.9 + 0.05).requires_grad_(True)
    assert torch.autograd.gradcheck(rgb_to_lab, (inner,))


# ---------------------------------------------------------------------------------------------------------
# MS-SSIM and the loss


def test_ms_ssim_identity_noise_and_symmetry():
    x = torch.rand(2, 1, 96, 96, dtype=F64)
    assert torch.equal(ms_ssim(x, x), torch.ones(2, dtype=F64))
    gen = torch.Generator().manual_seed(1)
    noise = torch.randn(x.shape, generator=gen, dtype=F64)
    mild = ms_ssim(x, (x + 0.05 * noise).clamp(0, 1))
    strong = ms_ssim(x, (x + 0.2 * noise).clamp(0, 1))
    assert (strong < mild).all() and (mild < 1).all() and (strong > 0).all()
    torch.testing.assert_close(ms_ssim(x, x + 0.05 * noise), ms_ssim(x + 0.05 * noise, x))


def test_single_scale_equals_matlab_ssim():
    a = torch.rand(2, 3, 24, 20, dtype=F64) * 255
    b = (a + 20 * torch.randn(a.shape, dtype=F64)).clamp(0, 255)
    torch.testing.assert_close(ms_ssim(a, b, data_range=255.0, weights=(1.0,)), matlab_ssim(a, b), rtol=0, atol=1e-10)


def test_ms_ssim_groups_scales_as_the_standard_definition():
    a = torch.rand(1, 1, 176, 176, dtype=F64)
    b = (a + 0.1 * torch.randn(a.shape, dtype=F64)).clamp(0, 1)
    want, pa, pb = 1.0, a, b
    for j, w in enumerate(MS_SSIM_WEIGHTS):
        if j:
            pa, pb = torch.nn.functional.avg_pool2d(pa, 2), torch.nn.functional.avg_pool2d(pb, 2)
        full, cs = ssim_components(pa, pb)
        want = want * (full if j == 4 else cs) ** w
    torch.testing.assert_close(ms_ssim(a, b), want, rtol=0, atol=1e-12)
    # the v1 DeepLPF grouping, prod_{j<5} cs_j^w_j ssim_5^w_j, raises the last SSIM to the first four weights
    # instead of the fifth: a different number
    v1 = want / full ** MS_SSIM_WEIGHTS[4] * full ** sum(MS_SSIM_WEIGHTS[:4])
    assert (ms_ssim(a, b) - v1).abs().item() > 1e-3


def test_ms_ssim_on_small_images_uses_fewer_renormalised_scales():
    # 40 x 40 with an 11 window: scales at 40 and 20 fit, 10 does not -> two scales, weights renormalised.
    a = torch.rand(1, 1, 40, 40, dtype=F64)
    b = (a + 0.1 * torch.randn(a.shape, dtype=F64)).clamp(0, 1)
    w0, w1 = MS_SSIM_WEIGHTS[:2]
    _, cs0 = ssim_components(a, b)
    full1, _ = ssim_components(torch.nn.functional.avg_pool2d(a, 2), torch.nn.functional.avg_pool2d(b, 2))
    want = cs0 ** (w0 / (w0 + w1)) * full1 ** (w1 / (w0 + w1))
    torch.testing.assert_close(ms_ssim(a, b), want, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="window"):
        ms_ssim(a[..., :10, :10], b[..., :10, :10])


def test_loss_zero_for_identical_positive_otherwise():
    x = torch.rand(2, 3, 20, 24)
    assert deeplpf_loss(x, x).item() == 0.0
    pred = (x + 0.1 * torch.randn(x.shape)).clamp(0, 1).requires_grad_(True)
    loss = deeplpf_loss(pred, x)
    assert loss.item() > 0
    loss.backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


def test_loss_known_value_white_against_black():
    # Rescaled Lab: white (1, 0.5, 0.5), black (0, 0.5, 0.5): L1 = 1/3. Flat images: cs = 1 at every scale and
    # the last SSIM is the luminance term C1 / (1 + C1); with the (v + 1) / 2 shift the MS-SSIM is
    # ((C1 / (1 + C1) + 1) / 2) ** 0.1333 (80 x 80: all five scales, weights as published).
    white, black = torch.ones(1, 3, 80, 80, dtype=F64), torch.zeros(1, 3, 80, 80, dtype=F64)
    c1 = 0.01**2
    structure = ((c1 / (1 + c1) + 1) / 2) ** MS_SSIM_WEIGHTS[-1]
    assert deeplpf_loss(white, black).item() == pytest.approx(1 / 3 + 1e-3 * (1 - structure), abs=1e-9)
    assert deeplpf_loss(white, black, ms_ssim_weight=0.0).item() == pytest.approx(1 / 3, abs=1e-12)
