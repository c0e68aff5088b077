"""Shifted-window attention: partition round trip, mask, relative positions, and the injection layer
against a slow per-pixel reference."""

import pytest
import torch

from anyres.nn.windows import (
    MASK_VALUE,
    PriorWindowLayer,
    WindowCrossAttention,
    pad_to_multiple,
    relative_position_index,
    shift_mask,
    window_partition,
    window_reverse,
)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("b,h,w,ws", [(2, 8, 12, 4), (1, 16, 16, 8), (3, 6, 3, 3)])
def test_partition_and_reverse_round_trip(b, h, w, ws):
    x = torch.randn(b, h, w, 5)
    win = window_partition(x, ws)
    assert win.shape == (b * (h // ws) * (w // ws), ws * ws, 5)
    assert torch.equal(window_reverse(win, ws, h, w), x)
    # window 1 of image 0 is the block right of the first one, rows in order
    if w // ws > 1:
        assert torch.equal(win[1].reshape(ws, ws, 5), x[0, :ws, ws : 2 * ws])
    with pytest.raises(ValueError, match="multiple of the window"):
        window_partition(torch.zeros(1, h + 1, w, 1), ws)


def test_relative_position_index_by_hand():
    idx = relative_position_index(2)  # tokens (0,0) (0,1) (1,0) (1,1); table side 3
    assert idx.shape == (4, 4)
    assert idx[0, 3] == 0 and idx[3, 0] == 8 and idx[1, 2] == (0 - 1 + 1) * 3 + (1 - 0 + 1)
    assert torch.all(idx.diagonal() == 4)
    assert idx.max() == 8 and idx.min() == 0


def test_shift_mask_marks_exactly_the_pairs_from_different_regions():
    h = w = 8
    ws, shift = 4, 2
    mask = shift_mask(h, w, ws, shift)
    assert mask.shape == (4, 16, 16)
    # the first window (top-left) lies inside region 0 entirely: nothing masked
    assert torch.all(mask[0] == 0)
    # in the last window (bottom-right) tokens come from 4 regions of 2x2 tokens each
    last = mask[3]
    rows = torch.arange(16) // 4
    cols = torch.arange(16) % 4
    region = (rows >= 2).long() * 2 + (cols >= 2).long()
    expected = torch.where(region[:, None] == region[None, :], 0.0, MASK_VALUE)
    assert torch.equal(last, expected)


def test_masked_keys_do_not_affect_the_output():
    torch.manual_seed(0)
    attn = WindowCrossAttention(8, 4, 2)
    q, kv = torch.randn(4, 16, 8), torch.randn(4, 16, 8)
    mask = shift_mask(8, 8, 4, 2)
    out = attn(q, kv, mask)
    # change the keys/values of region 3 in the last window: tokens of regions 0-2 must not notice
    rows, cols = torch.arange(16) // 4, torch.arange(16) % 4
    region3 = (rows >= 2) & (cols >= 2)
    kv2 = kv.clone()
    kv2[3, region3] += 10 * torch.randn(int(region3.sum()), 8)
    out2 = attn(q, kv2, mask)
    torch.testing.assert_close(out2[3, ~region3], out[3, ~region3], atol=1e-6, rtol=0)
    assert not torch.allclose(out2[3, region3], out[3, region3])
    torch.testing.assert_close(out2[:3], out[:3], atol=0, rtol=0)


def _reference_layer(layer: PriorWindowLayer, x: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    """Per-pixel attention: each pixel attends to the pixels of its (shifted) window that are also
    neighbours in the unrolled map (i.e. same region), written with explicit loops."""
    b, h, w, c = x.shape
    ws, shift = layer.ws, layer.shift if min(h, w) > layer.ws else 0
    attn = layer.attn
    heads, hd = attn.heads, c // attn.heads
    # every pixel's own prior: the image's, or that of the unshifted window it lies in
    pixel_prior = torch.stack(
        [
            torch.stack([prior[:, i // ws, j // ws] if prior.dim() == 4 else prior for j in range(w)], 1)
            for i in range(h)
        ],
        1,
    )
    mod = layer.modulation(pixel_prior)
    if layer.inject == "queries":
        kv = layer.norm1(x)
        scale, offset = mod.chunk(2, -1)
        q = kv * scale + offset
    else:
        scale, offset, fs, fo = mod.chunk(4, -1)
        q = kv = layer.norm1(x) * (1 + scale) + offset
    bias = attn.position_bias()  # (heads, N, N)
    out = torch.zeros_like(x)
    for n in range(b):
        for i in range(h):
            for j in range(w):
                # position in the rolled map, its window and index there
                ri, rj = (i - shift) % h, (j - shift) % w
                wi, wj = ri // ws, rj // ws
                keys = []
                for a in range(ws):
                    for bb in range(ws):
                        si, sj = wi * ws + a, wj * ws + bb  # rolled coords of a window member
                        oi, oj = (si + shift) % h, (sj + shift) % w  # its original position

                        # same region in the rolled map <=> it did not wrap differently from (ri, rj)
                        def reg(v, n_):
                            return 0 if v < n_ - ws else (1 if v < n_ - shift else 2)

                        same = (not shift) or (reg(si, h) == reg(ri, h) and reg(sj, w) == reg(rj, w))
                        if same:
                            keys.append((a * ws + bb, oi, oj))
                me = (ri % ws) * ws + (rj % ws)
                qv = attn.q(q[n, i, j]).reshape(heads, hd) * attn.scale
                ks = torch.stack([attn.kv(kv[n, oi, oj]) for _, oi, oj in keys])  # (K, 2c)
                k_, v_ = ks[:, :c].reshape(-1, heads, hd), ks[:, c:].reshape(-1, heads, hd)
                logits = torch.einsum("hd,khd->hk", qv, k_) + bias[:, me, [t for t, _, _ in keys]]
                o = torch.einsum("hk,khd->hd", logits.softmax(-1), v_).reshape(c)
                out[n, i, j] = attn.proj(o)
    y = x + out
    if layer.inject == "queries":
        return y + layer.mlp(layer.norm2(y))
    return y + layer.mlp(layer.norm2(y) * (1 + fs) + fo)


@pytest.mark.parametrize("per_window", [False, True])
@pytest.mark.parametrize("inject", ["queries", "features"])
@pytest.mark.parametrize("shift", [0, 2])
def test_prior_layer_equals_per_pixel_reference(shift, inject, per_window):
    torch.manual_seed(1)
    layer = PriorWindowLayer(8, 6, ws=4, shift=shift, heads=2, inject=inject)
    with torch.no_grad():
        layer.attn.bias_table.normal_(0, 0.5)
        layer.modulation.weight.normal_(0, 0.5)
    x = torch.randn(2, 8, 12, 8)
    prior = torch.randn(2, 2, 3, 6) if per_window else torch.randn(2, 6)  # (8 / 4) x (12 / 4) windows
    with torch.no_grad():
        torch.testing.assert_close(layer(x, prior), _reference_layer(layer, x, prior), atol=2e-5, rtol=1e-4)


def test_features_injection_with_zero_modulation_ignores_the_prior():
    torch.manual_seed(2)
    feat = PriorWindowLayer(8, 6, ws=4, shift=2, heads=2, inject="features")
    x = torch.randn(1, 8, 8, 8)
    with torch.no_grad():
        weight = feat.modulation.weight.clone()
        feat.modulation.weight.zero_()  # (1 + 0) * LN(F) + 0: the identity modulation
        assert torch.equal(feat(x, torch.zeros(1, 6)), feat(x, torch.randn(1, 6)))
        feat.modulation.weight.copy_(weight)
        assert not torch.allclose(feat(x, torch.zeros(1, 6)), feat(x, torch.randn(1, 6)))
    with pytest.raises(ValueError, match="inject"):
        PriorWindowLayer(8, 6, ws=4, inject="values")


def test_prior_changes_the_output_and_pad_is_cropped_back():
    layer = PriorWindowLayer(8, 6, ws=4, shift=2, heads=2)
    x = torch.randn(1, 8, 8, 8)
    a, b = layer(x, torch.zeros(1, 6)), layer(x, torch.randn(1, 6))
    assert not torch.allclose(a, b)
    y, size = pad_to_multiple(torch.randn(1, 3, 5, 9), 4)
    assert y.shape == (1, 3, 8, 12) and size == (5, 9)
    y, _ = pad_to_multiple(torch.randn(1, 3, 8, 4), 4)
    assert y.shape == (1, 3, 8, 4)  # already a multiple: no extra window (unlike the reference code)
