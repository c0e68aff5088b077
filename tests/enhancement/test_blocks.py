"""Large images a block at a time: exact tiles of DeepLPF and the U-Net enhancer, DeepLPF's filters from
samples and per tile, resizing in row bands. Each equals the one-pass result to float rounding."""

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import anyres.enhancement.blocks as blocks
from anyres.enhancement.api import enhance_rgb, load_resampler
from anyres.enhancement.blocks import Blocking, enhance_image, tile_plan, unet_reach
from anyres.enhancement.deeplpf import DeepLPF, DeepLPFConfig
from anyres.enhancement.filters import cubic_polynomial, elliptical_map, graduated_map, unit_grid
from anyres.enhancement.lmar import LMAR, LMARConfig
from anyres.enhancement.unet import UNetEnhancer
from anyres.hub import save_network

pytestmark = pytest.mark.usefixtures("one_thread")

# Every image is cut: tiles of one pooling-grid step, bands of 7 rows.
TINY = Blocking(one_pass_pixels=0, tile=0, band=7)


def _lively(net):
    """Weights whose deep paths matter (PyTorch's default init shrinks them to rounding), so that a tile short
    of the network's reach would show."""
    torch.manual_seed(1)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
                m.weight.normal_(0, 1.5 / math.sqrt(m.weight[0].numel()))
                m.bias.normal_(0, 0.05)
    return net.eval()


def _deeplpf():
    return _lively(DeepLPF(DeepLPFConfig(width=2, features=4, head_size=8, init="default")))


def _short_margin(monkeypatch, steps=1):
    real = blocks.tile_plan

    def short(*args, **kwargs):
        plan = real(*args, **kwargs)
        return None if plan is None else dataclasses.replace(plan, margin=plan.margin - steps * plan.multiple)

    monkeypatch.setattr(blocks, "tile_plan", short)


def test_reach_of_the_two_u_nets_by_hand():
    # DeepLPF's backbone: 5 levels, then to_rgb (2 convs) and to_features (1); followed back by hand: 110.
    assert unet_reach(5, tail_convs=3) == 110
    assert [unet_reach(levels) for levels in (1, 2, 3, 4)] == [2, 9, 23, 51]
    plan = tile_plan(_deeplpf(), 100, 120, 0)
    assert (plan.multiple, plan.margin, plan.core, plan.padded) == (16, 112, 16, (112, 128))
    plan = tile_plan(UNetEnhancer(width=2, levels=4), 50, 61, 200)
    assert (plan.multiple, plan.margin, plan.core, plan.padded) == (8, 56, 88, (56, 64))
    assert tile_plan(torch.nn.Identity(), 100, 100, 0) is None  # other networks run in one pass
    assert tile_plan(DeepLPF(DeepLPFConfig(width=2, features=4, head_size=None)), 100, 100, 0) is None


@pytest.mark.parametrize("size", [(128, 150), (141, 163)])
def test_tiled_deeplpf_equals_one_pass(size, monkeypatch):
    net, x = _deeplpf(), torch.rand(1, 3, *size)
    one_pass = enhance_rgb(net, x)
    tiled = enhance_image(net, x, blocking=TINY)
    assert one_pass.std() > 0.1
    torch.testing.assert_close(tiled, one_pass, rtol=0, atol=2e-5)
    if size[0] % 16 == 0:  # the margin is needed: one pooling step less and the tiles' edges show
        _short_margin(monkeypatch)
        cores_of_32 = Blocking(one_pass_pixels=0, tile=2 * 112 + 32)
        assert (enhance_image(net, x, blocking=cores_of_32) - one_pass).abs().max() > 1e-4


@pytest.mark.parametrize("levels", [3, 4])
def test_tiled_unet_equals_one_pass(levels, monkeypatch):
    net, x = _lively(UNetEnhancer(width=2, levels=levels)), torch.rand(1, 3, 120, 141)
    one_pass = enhance_rgb(net, x)
    torch.testing.assert_close(enhance_image(net, x, blocking=TINY), one_pass, rtol=0, atol=2e-5)
    _short_margin(monkeypatch, steps=2)
    assert (enhance_image(net, x, blocking=TINY) - one_pass).abs().max() > 1e-3


def test_working_size_in_bands_equals_one_pass(tmp_path):
    x = torch.rand(1, 3, 97, 131)
    for net in (_deeplpf(), _lively(UNetEnhancer(width=2, levels=3))):
        for work in ((40, 53), (97, 64), (30, 131)):  # both axes, one axis, the other
            one_pass = enhance_rgb(net, x, working=work)
            torch.testing.assert_close(enhance_image(net, x, working=work, blocking=TINY), one_pass, rtol=0, atol=2e-5)
    torch.manual_seed(0)
    sampler = load_resampler("lmar", save_network(LMAR(LMARConfig(hidden=[8])).eval(), tmp_path / "lmar"))
    net = _lively(UNetEnhancer(width=2, levels=2))
    one_pass = enhance_rgb(net, x, working=(40, 53), resampler=sampler)
    banded = enhance_image(net, x, working=(40, 53), resampler=sampler, blocking=TINY)
    torch.testing.assert_close(banded, one_pass, rtol=0, atol=2e-5)


def test_default_blocking_leaves_images_up_to_1_mp_alone():
    net, x = _lively(UNetEnhancer(width=2, levels=2)), torch.rand(1, 3, 64, 80)
    for work in (None, (32, 40)):  # one pass, bit for bit
        assert torch.equal(enhance_image(net, x, working=work), enhance_rgb(net, x, working=work))
    assert not Blocking().splits(1024, 1024) and Blocking().splits(1025, 1024)


def test_bilinear_from_samples_matches_torch():
    for h, w, s in ((301, 299, 300), (1000, 777, 300), (37, 53, 8), (64, 48, 300), (300, 300, 300)):
        x = torch.rand(1, 2, h, w)
        samples = blocks._Samples(h, w, s, "cpu")
        assert len(samples.rows) <= min(h, 2 * s) and len(samples.cols) <= min(w, 2 * s)
        g = x[..., torch.from_numpy(samples.rows), :][..., torch.from_numpy(samples.cols)]
        ref = F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False)
        torch.testing.assert_close(samples.resize(g), ref, rtol=0, atol=2e-6)


def test_filters_on_a_window_equal_the_full_maps():
    torch.manual_seed(0)
    b, n = 2, 3
    grad = {
        "slope": torch.randn(b, n),
        "intercept": torch.rand(b, n),
        "offset1": torch.rand(b, n) + 0.01,
        "offset2": torch.rand(b, n) + 0.01,
        "invert": (torch.rand(b, n) > 0.5).float(),
        "scale": 2 * torch.rand(b, n, 3),
    }
    ell = {
        "centre_x": torch.rand(b, n),
        "centre_y": torch.rand(b, n),
        "semi_a": torch.rand(b, n) + 0.01,
        "semi_b": torch.rand(b, n) + 0.01,
        "angle": torch.rand(b, n) * 3,
        "scale": 2 * torch.rand(b, n, 3),
    }
    rows, cols = torch.arange(5, 17), torch.tensor([0, 3, 4, 30, 40])
    full_g, full_e = graduated_map(20, 41, **grad), elliptical_map(20, 41, **ell)
    assert torch.equal(graduated_map(20, 41, **grad, rows=rows, cols=cols), full_g[..., rows, :][..., cols])
    assert torch.equal(elliptical_map(20, 41, **ell, rows=rows, cols=cols), full_e[..., rows, :][..., cols])
    image, coeffs = torch.rand(b, 3, 20, 41), torch.randn(b, 3, 20)
    grid = unit_grid(20, 41, rows=rows, cols=cols)
    part = cubic_polynomial(image[..., rows, :][..., cols], coeffs, grid=grid)
    torch.testing.assert_close(part, cubic_polynomial(image, coeffs)[..., rows, :][..., cols], rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="rows must lie in"):
        unit_grid(20, 41, rows=torch.tensor([20]))
    with pytest.raises(ValueError, match="grid must be"):
        cubic_polynomial(image, coeffs, grid=grid)


def test_one_pass_estimate_names_gigabytes():
    assert blocks.one_pass_bytes(DeepLPF(), 64_000_000) / 1e9 == pytest.approx(77, abs=1)
    assert np.isfinite(blocks.one_pass_bytes(_deeplpf(), 10))


def test_enhance_rgb_cuts_single_images_above_its_limit():
    net, x = _lively(UNetEnhancer(width=2, levels=3)), torch.rand(1, 3, 70, 90)
    for work in (None, (30, 41)):
        cut = enhance_rgb(net, x, working=work, blocking=TINY)
        torch.testing.assert_close(cut, enhance_rgb(net, x, working=work), rtol=0, atol=2e-5)
        assert torch.equal(cut, enhance_image(net, x, working=work, blocking=TINY))
    batch = torch.rand(2, 3, 20, 24)  # batches run in one pass
    assert torch.equal(enhance_rgb(net, batch, blocking=TINY), enhance_rgb(net, batch))
