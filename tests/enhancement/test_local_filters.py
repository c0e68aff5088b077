"""DeepLPF's local filters (anyres.enhancement.filters): hand values, closed forms, invariants, gradients."""

import ast
import math
from pathlib import Path

import pytest
import torch

from anyres.enhancement import filters as lf

pytestmark = pytest.mark.usefixtures("one_thread")

F64 = torch.float64


def t(*rows):
    return torch.tensor(rows, dtype=F64)


def grad_params(
    batch=1,
    count=1,
    channels=3,
    *,
    slope=0.5,
    intercept=0.3,
    offset1=0.2,
    offset2=0.4,
    invert=0.0,
    scale=(1.5, 0.5, 1.0),
):
    full = lambda v: torch.full((batch, count), float(v), dtype=F64)  # noqa: E731
    return dict(
        slope=full(slope),
        intercept=full(intercept),
        offset1=full(offset1),
        offset2=full(offset2),
        invert=full(invert),
        scale=torch.tensor(scale, dtype=F64).expand(batch, count, channels).clone(),
    )


def random_graduated(batch, count, channels=3, dtype=F64):
    return dict(
        slope=torch.randn(batch, count, dtype=dtype) * 1.5,
        intercept=torch.rand(batch, count, dtype=dtype),
        offset1=torch.rand(batch, count, dtype=dtype) * 0.5 + 0.05,
        offset2=torch.rand(batch, count, dtype=dtype) * 0.5 + 0.05,
        invert=torch.rand(batch, count, dtype=dtype) * 0.8 + 0.1,
        scale=torch.rand(batch, count, channels, dtype=dtype) * 2.0,
    )


def random_elliptical(batch, count, channels=3, dtype=F64):
    return dict(
        centre_x=torch.rand(batch, count, dtype=dtype),
        centre_y=torch.rand(batch, count, dtype=dtype),
        semi_a=torch.rand(batch, count, dtype=dtype) * 0.6 + 0.1,
        semi_b=torch.rand(batch, count, dtype=dtype) * 0.6 + 0.1,
        angle=torch.rand(batch, count, dtype=dtype) * math.pi,
        scale=torch.rand(batch, count, channels, dtype=dtype) * 2.0,
    )


# ---------------------------------------------------------------------------------------------------------
# Coordinates


def test_unit_grid_is_pixel_centres_x_along_width():
    x, y = lf.unit_grid(2, 4, dtype=F64)
    assert x.shape == y.shape == (2, 4)
    assert torch.equal(x[0], t(0.125, 0.375, 0.625, 0.875)) and torch.equal(x[1], x[0])
    assert torch.equal(y[:, 0], t(0.25, 0.75)) and torch.equal(y[:, 3], y[:, 0])


# ---------------------------------------------------------------------------------------------------------
# Graduated filter


def test_graduated_hand_values():
    # 4 x 5 image (not square, so swapped axes would show); m = 0.5, c = 0.3, o1 = 0.2, o2 = 0.4, s = (1.5, 0.5, 1).
    out = lf.graduated_map(4, 5, **grad_params())
    assert out.shape == (1, 1, 3, 4, 5) and out.dtype == F64
    m = out[0, 0]
    # row 2, col 1: x = 1.5/5 = 0.3, y = 2.5/4 = 0.625; y - m x - c = 0.175 in [0, o1): a = (1 + 0.175/0.2)/2 = 0.9375
    assert m[:, 2, 1].tolist() == pytest.approx([1 + 0.5 * 0.9375, 1 - 0.5 * 0.9375, 1.0], abs=1e-12)
    # row 3, col 0: x = 0.1, y = 0.875; 0.875 - 0.05 - 0.3 = 0.525 >= o1: a = 1, full scale
    assert m[:, 3, 0].tolist() == pytest.approx([1.5, 0.5, 1.0], abs=1e-12)
    # row 1, col 2: x = 0.5, y = 0.375; 0.375 - 0.25 - 0.3 = -0.175 in (-o2, 0): a = (1 - 0.175/0.4)/2 = 0.28125
    assert m[:, 1, 2].tolist() == pytest.approx([1.140625, 0.859375, 1.0], abs=1e-12)
    # row 0, col 4: x = 0.9, y = 0.125; 0.125 - 0.45 - 0.3 = -0.625 <= -o2: a = 0, no change
    assert m[:, 0, 4].tolist() == pytest.approx([1.0, 1.0, 1.0], abs=1e-12)
    # inverted: weight 1 - a, so row 2, col 1 gets 1 + 0.5 * 0.0625 in red, row 0, col 4 the full scale
    inv = lf.graduated_map(4, 5, **grad_params(invert=1.0))[0, 0]
    assert inv[0, 2, 1].item() == pytest.approx(1.03125, abs=1e-12)
    assert inv[:, 0, 4].tolist() == pytest.approx([1.5, 0.5, 1.0], abs=1e-12)


def test_graduated_zero_slope_closed_form():
    # m = 0: the map depends on y only, piecewise linear between c - o2 (no change) and c + o1 (full scale).
    c, o1, o2, s = 0.45, 0.25, 0.15, 1.8
    out = lf.graduated_map(16, 3, **grad_params(slope=0.0, intercept=c, offset1=o1, offset2=o2, scale=(s,)))[0, 0, 0]
    _, y = lf.unit_grid(16, 3, dtype=F64)
    strength = torch.where(
        y >= c, torch.clamp(0.5 + 0.5 * (y - c) / o1, max=1.0), torch.clamp(0.5 + 0.5 * (y - c) / o2, min=0.0)
    )
    torch.testing.assert_close(out, 1 + (s - 1) * strength, rtol=0, atol=1e-12)
    assert torch.equal(out, out[:, :1].expand_as(out))  # constant along each row


def test_graduated_constant_along_lines_parallel_to_its_edge():
    # On an 8 x 4 grid one column is dx = 1/4 and one row dy = 1/8, so slope 0.5 runs one row per column.
    p = grad_params(slope=0.5, intercept=0.2, offset1=0.3, offset2=0.2, invert=0.3)
    out = lf.graduated_map(8, 4, **p)[0, 0]
    torch.testing.assert_close(out[:, 1:, 1:], out[:, :-1, :-1], rtol=0, atol=1e-12)
    # ... and it is not constant across them (the column direction crosses the band)
    assert (out[0, :, 1:] - out[0, :, :-1]).abs().max() > 0.05


def test_graduated_inversion_swaps_sides():
    p = random_graduated(2, 3)
    plain = lf.graduated_map(6, 7, **{**p, "invert": torch.zeros(2, 3, dtype=F64)})
    flipped = lf.graduated_map(6, 7, **{**p, "invert": torch.ones(2, 3, dtype=F64)})
    torch.testing.assert_close((plain - 1) + (flipped - 1), (p["scale"] - 1)[..., None, None].expand_as(plain))
    # a soft bit blends the two linearly
    half = lf.graduated_map(6, 7, **{**p, "invert": torch.full((2, 3), 0.25, dtype=F64)})
    torch.testing.assert_close(half, 0.75 * plain + 0.25 * flipped)


def test_graduated_map_stays_between_one_and_scale():
    p = random_graduated(4, 3)
    p["slope"] = p["slope"] * 4  # steep lines too
    out = lf.graduated_map(9, 11, **p)
    s = p["scale"][..., None, None]
    assert (out >= torch.minimum(s, torch.ones_like(s)) - 1e-12).all()
    assert (out <= torch.maximum(s, torch.ones_like(s)) + 1e-12).all()
    assert ((out >= 0) & (out <= 2)).all()


# ---------------------------------------------------------------------------------------------------------
# Elliptical filter


def _ellipse_by_hand(x, y, h, k, a, b, theta, s):
    u = (x - h) * math.cos(theta) + (y - k) * math.sin(theta)
    v = (x - h) * math.sin(theta) - (y - k) * math.cos(theta)
    rho = math.sqrt(u * u / (a * a) + v * v / (b * b))
    return (1 + (s - 1) * (1 - rho)) if rho <= 1 else 1.0, rho


def test_elliptical_hand_values():
    h, k, a, b, theta, scales = 0.45, 0.55, 0.4, 0.2, math.pi / 6, (2.0, 0.5, 1.0)
    p = dict(
        centre_x=t([h]),
        centre_y=t([k]),
        semi_a=t([a]),
        semi_b=t([b]),
        angle=t([theta]),
        scale=torch.tensor([[scales]], dtype=F64),
    )
    out = lf.elliptical_map(4, 6, **p)
    assert out.shape == (1, 1, 3, 4, 6)
    rhos = []
    for row, col in ((1, 2), (2, 3), (3, 4), (0, 5)):
        x, y = (col + 0.5) / 6, (row + 0.5) / 4
        for ch, s in enumerate(scales):
            want, rho = _ellipse_by_hand(x, y, h, k, a, b, theta, s)
            assert out[0, 0, ch, row, col].item() == pytest.approx(want, abs=1e-12)
        rhos.append(rho)
    assert min(rhos) < 1 < max(rhos)  # the chosen pixels cover inside and outside


def test_elliptical_circle_closed_form_any_angle():
    # a = b = r: the map is 1 + (s - 1) max(1 - dist / r, 0) whatever the angle.
    h, k, r, s = 0.4, 0.6, 0.35, 0.3
    _x, _y = lf.unit_grid(7, 8, dtype=F64)
    want = 1 + (s - 1) * torch.clamp(1 - torch.hypot(_x - h, _y - k) / r, min=0)
    for theta in (0.0, 0.7, 2.5):
        p = dict(
            centre_x=t([h]),
            centre_y=t([k]),
            semi_a=t([r]),
            semi_b=t([r]),
            angle=t([theta]),
            scale=torch.full((1, 1, 1), s, dtype=F64),
        )
        torch.testing.assert_close(lf.elliptical_map(7, 8, **p)[0, 0, 0], want, rtol=0, atol=1e-12)


def test_elliptical_tiny_ellipse_between_pixels_is_identity():
    # centre on a pixel corner, semi-axes below half a pixel: no pixel centre is inside
    p = dict(
        centre_x=t([0.5]),
        centre_y=t([0.5]),
        semi_a=t([0.05]),
        semi_b=t([0.04]),
        angle=t([0.3]),
        scale=torch.full((1, 1, 3), 1.9, dtype=F64),
    )
    assert torch.equal(lf.elliptical_map(4, 4, **p), torch.ones(1, 1, 3, 4, 4, dtype=F64))


def test_elliptical_symmetric_about_centre_and_peaks_there():
    s = torch.tensor([[[1.7, 0.4, 1.2]]], dtype=F64)
    p = dict(centre_x=t([0.5]), centre_y=t([0.5]), semi_a=t([0.45]), semi_b=t([0.2]), angle=t([math.pi / 5]), scale=s)
    out = lf.elliptical_map(7, 7, **p)[0, 0]  # the centre is pixel (3, 3)
    torch.testing.assert_close(out, out.flip(-1, -2), rtol=0, atol=1e-12)  # point symmetry
    torch.testing.assert_close(out[:, 3, 3], s[0, 0], rtol=0, atol=1e-12)  # full scale at the centre
    dev = (out - 1).abs()
    assert torch.all(dev[:, 3, 3] >= dev.flatten(1).max(dim=1).values)
    dev[:, 3, 3] = -1
    assert (dev.flatten(1).max(dim=1).values < (s[0, 0] - 1).abs()).all()  # the peak is strict
    # a rotated ellipse is mirror-symmetric about neither axis line through its centre (the reference's
    # acos angle makes its shape symmetric about the horizontal one)
    assert (out - out.flip(-2)).abs().max() > 0.05 and (out - out.flip(-1)).abs().max() > 0.05


def test_elliptical_axis_a_lies_along_the_angle():
    # 9 x 10 grid: the centre (0.45, 0.5) is pixel (row 4, col 4); a column is 0.1, a row 1/9
    base = dict(centre_x=t([0.45]), centre_y=t([0.5]), scale=torch.full((1, 1, 1), 1.6, dtype=F64))
    horizontal = lf.elliptical_map(9, 10, semi_a=t([0.35]), semi_b=t([0.15]), angle=t([0.0]), **base)
    vertical = lf.elliptical_map(9, 10, semi_a=t([0.15]), semi_b=t([0.35]), angle=t([math.pi / 2]), **base)
    half_turn = lf.elliptical_map(9, 10, semi_a=t([0.35]), semi_b=t([0.15]), angle=t([math.pi]), **base)
    torch.testing.assert_close(horizontal, vertical, rtol=0, atol=1e-12)
    torch.testing.assert_close(horizontal, half_turn, rtol=0, atol=1e-12)
    m = horizontal[0, 0, 0]
    assert m[4, 7].item() == pytest.approx(1 + 0.6 * (1 - 0.3 / 0.35), abs=1e-12)  # dx = 0.3 < a: inside
    assert m[7, 4].item() == 1.0  # dy = 1/3 > b: outside


def test_elliptical_map_stays_between_one_and_scale():
    p = random_elliptical(4, 3)
    out = lf.elliptical_map(9, 11, **p)
    s = p["scale"][..., None, None]
    assert (out >= torch.minimum(s, torch.ones_like(s)) - 1e-12).all()
    assert (out <= torch.maximum(s, torch.ones_like(s)) + 1e-12).all()


def test_elliptical_gradient_is_finite_at_a_centre_pixel():
    p = dict(
        centre_x=t([0.5]),
        centre_y=t([0.5]),
        semi_a=t([0.3]),
        semi_b=t([0.2]),
        angle=t([0.4]),
        scale=torch.full((1, 1, 1), 1.5, dtype=F64),
    )
    for v in p.values():
        v.requires_grad_(True)
    lf.elliptical_map(5, 5, **p).sum().backward()
    assert all(torch.isfinite(v.grad).all() for v in p.values())


# ---------------------------------------------------------------------------------------------------------
# Cubic filter


def test_cubic_terms_are_the_twenty_monomials_of_degree_at_most_three():
    assert len(lf.CUBIC_TERMS) == len(set(lf.CUBIC_TERMS)) == 20
    assert all(sum(e) <= 3 for e in lf.CUBIC_TERMS) and lf.CUBIC_TERMS[0] == (3, 0, 0)
    assert lf.CUBIC_TERMS[-1] == (0, 0, 0)


def _cubic_by_hand(c, x, y, i):
    A, B, C, D, E, F, G, H, I, J, K, L, M, N, O, P, Q, R, S, T = c  # noqa: E741, N806
    return (
        A * x**3
        + B * x**2 * y
        + C * x**2 * i
        + D * x**2
        + E * x * y**2
        + F * x * y * i
        + G * x * y
        + H * x * i**2
        + I * x * i
        + J * x
        + K * y**3
        + L * y**2 * i
        + M * y**2
        + N * y * i**2
        + O * y * i
        + P * y
        + Q * i**3
        + R * i**2
        + S * i
        + T
    )


def test_cubic_hand_values():
    coeffs = torch.stack(
        [
            torch.linspace(-1.0, 1.0, 20, dtype=F64),
            torch.linspace(0.7, -0.3, 20, dtype=F64),
            torch.cos(torch.arange(20, dtype=F64)),
        ]
    )[None]
    image = torch.rand(1, 3, 2, 3, dtype=F64)
    f = lf.cubic_polynomial(image, coeffs)
    for row, col in ((1, 2), (0, 1)):
        x, y = (col + 0.5) / 3, (row + 0.5) / 2
        for ch in range(3):
            want = _cubic_by_hand(coeffs[0, ch].tolist(), x, y, image[0, ch, row, col].item())
            assert f[0, ch, row, col].item() == pytest.approx(want, abs=1e-12)


def test_cubic_constant_term_and_identity():
    image = torch.rand(2, 3, 4, 5, dtype=F64) * 1.4 - 0.2
    coeffs = torch.zeros(2, 3, 20, dtype=F64)
    coeffs[:, :, 19] = t([0.1, -0.2, 0.3], [0.0, 0.5, -0.4])
    torch.testing.assert_close(lf.cubic_polynomial(image, coeffs), coeffs[:, :, 19, None, None].expand_as(image))
    torch.testing.assert_close(lf.cubic_filter(image, coeffs), (image + coeffs[:, :, 19, None, None]).clamp(0, 1))
    identity = torch.zeros(2, 3, 20, dtype=F64)
    identity[:, :, 18] = 1.0  # S * i
    torch.testing.assert_close(lf.cubic_filter(image, identity, residual=False), image.clamp(0, 1))


def test_cubic_has_no_cross_channel_terms():
    image = torch.rand(1, 3, 4, 4, dtype=F64)
    coeffs = torch.randn(1, 3, 20, dtype=F64)
    other = image.clone()
    other[:, 1] = torch.rand(1, 4, 4, dtype=F64)
    a, b = lf.cubic_polynomial(image, coeffs), lf.cubic_polynomial(other, coeffs)
    assert torch.equal(a[:, [0, 2]], b[:, [0, 2]]) and not torch.equal(a[:, 1], b[:, 1])


# ---------------------------------------------------------------------------------------------------------
# Fusion


def test_fusion_modes_and_neutral_points():
    ones = torch.ones(1, 3, 2, 2, dtype=F64)
    assert torch.equal(lf.fuse_scale_maps(ones, ones), 2 * ones)  # the published sum is neutral at 2
    assert torch.equal(lf.fuse_scale_maps(ones, ones, mode="deviation"), ones)
    g, e = ones * 1.3, ones * 0.6
    torch.testing.assert_close(lf.fuse_scale_maps(g, e), ones * 1.9)
    torch.testing.assert_close(lf.fuse_scale_maps(g, e, mode="deviation"), ones * 0.9)
    assert torch.equal(lf.fuse_scale_maps(g * 1.5, e * 2.0), 2 * ones)  # clamped
    with pytest.raises(ValueError, match="sum, deviation"):
        lf.fuse_scale_maps(g, e, mode="mean")


def test_combine_instances_is_a_clamped_product():
    maps = torch.rand(2, 3, 3, 4, 4, dtype=F64) * 2
    want = (maps[:, 0] * maps[:, 1] * maps[:, 2]).clamp(0, 2)
    torch.testing.assert_close(lf.combine_instances(maps), want)
    y2, s, y1 = torch.rand(2, 3, 4, 4, dtype=F64), want, torch.rand(2, 3, 4, 4, dtype=F64) - 0.5
    y3 = lf.apply_scale_map(y2, s)
    torch.testing.assert_close(y3, (y2 * s).clamp(0, 1))
    torch.testing.assert_close(lf.long_residual(y3, y1), (y3 + y1).clamp(0, 1))


def test_pipeline_ranges_on_random_parameters():
    g = lf.combine_instances(lf.graduated_map(8, 8, **random_graduated(2, 3)))
    e = lf.combine_instances(lf.elliptical_map(8, 8, **random_elliptical(2, 3)))
    s = lf.fuse_scale_maps(g, e)
    y1 = torch.randn(2, 3, 8, 8, dtype=F64)
    out = lf.long_residual(lf.apply_scale_map(lf.cubic_filter(y1, torch.randn(2, 3, 20, dtype=F64)), s), y1)
    for m in (g, e, s):
        assert ((m >= 0) & (m <= 2)).all()
    assert ((out >= 0) & (out <= 1)).all() and out.shape == (2, 3, 8, 8)


# ---------------------------------------------------------------------------------------------------------
# Straight-through inversion bit


def test_straight_through_bit_forward_and_backward():
    g = t(-2.0, -1.0, -0.5, 0.0, 0.3, 1.0, 1.5).requires_grad_(True)
    bit = lf.straight_through_bit(g)
    assert torch.equal(bit.detach(), t(0, 0, 0, 0, 1, 1, 1))  # exactly 0 or 1
    upstream = t(1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0)
    (bit * upstream).sum().backward()
    # d bit / d g = 1/2 on |g| <= 1 (ends included), 0 outside
    assert torch.equal(g.grad, t(0.0, 1.0, 1.5, 2.0, 2.5, 3.0, 0.0))


def test_straight_through_gradient_reaches_the_inversion_logit():
    # Two instances on a 3 x 4 image, one with the bit on (g = 0.4) and one off (g = -0.7); d/dg of the map
    # summed over pixels and channels is 1/2 * sum (1 - 2 a) (s_c - 1), a being the un-inverted strength.
    h, w = 3, 4
    m, c, o1, o2 = [0.5, -1.0], [0.4, 0.9], [0.3, 0.2], [0.25, 0.5]
    scales = [[1.6, 0.7, 1.2], [0.5, 1.9, 1.0]]
    logit = t([0.4, -0.7]).requires_grad_(True)
    bit = lf.straight_through_bit(logit)
    out = lf.graduated_map(
        h,
        w,
        slope=t(m),
        intercept=t(c),
        offset1=t(o1),
        offset2=t(o2),
        invert=bit,
        scale=torch.tensor([scales], dtype=F64),
    )
    out.sum().backward()
    want = []
    for n in range(2):
        total = 0.0
        for row in range(h):
            for col in range(w):
                x, y = (col + 0.5) / w, (row + 0.5) / h
                d = y - m[n] * x - c[n]
                a = min(0.5 * (1 + d / o1[n]), 1.0) if d >= 0 else max(0.5 * (1 + d / o2[n]), 0.0)
                total += sum((1 - 2 * a) * (s - 1) for s in scales[n])
        want.append(0.5 * total)
    assert logit.grad.abs().min() > 1e-3  # really non-zero
    assert logit.grad[0].tolist() == pytest.approx(want, abs=1e-12)
    # the forward pass equals the map with a plain 0/1 bit
    plain = lf.graduated_map(
        h,
        w,
        slope=t(m),
        intercept=t(c),
        offset1=t(o1),
        offset2=t(o2),
        invert=t([1.0, 0.0]),
        scale=torch.tensor([scales], dtype=F64),
    )
    assert torch.equal(out.detach(), plain)


# ---------------------------------------------------------------------------------------------------------
# Gradients (float64 gradcheck) and batching


def _gradcheck(fn, inputs):
    inputs = tuple(v.detach().clone().requires_grad_(True) for v in inputs)
    assert torch.autograd.gradcheck(fn, inputs, fast_mode=True)


def test_gradcheck_graduated():
    p = random_graduated(2, 2)
    names = list(p)
    _gradcheck(lambda *v: lf.graduated_map(5, 6, **dict(zip(names, v))), [p[k] for k in names])


def test_gradcheck_elliptical():
    p = random_elliptical(2, 2)
    p["semi_a"], p["semi_b"] = p["semi_a"] + 0.3, p["semi_b"] + 0.3  # big enough to cover several pixels
    names = list(p)
    _gradcheck(lambda *v: lf.elliptical_map(5, 6, **dict(zip(names, v))), [p[k] for k in names])


def test_gradcheck_cubic():
    image = torch.rand(2, 3, 5, 6, dtype=F64)
    coeffs = torch.randn(2, 3, 20, dtype=F64)
    _gradcheck(lf.cubic_polynomial, [image, coeffs])
    _gradcheck(lf.cubic_filter, [image * 0.4 + 0.3, coeffs * 0.01])  # inside the clamp


def test_gradcheck_whole_pipeline():
    # image Y1 -> cubic -> x (graduated (x) elliptical fused) -> + Y1; values kept inside every clamp
    gp, ep = random_graduated(1, 2), random_elliptical(1, 2)
    gp["scale"] = gp["scale"] * 0.3 + 0.75
    ep["scale"] = ep["scale"] * 0.3 + 0.75
    gk, ek = list(gp), list(ep)
    image = torch.rand(1, 3, 4, 5, dtype=F64) * 0.15 + 0.2
    coeffs = torch.randn(1, 3, 20, dtype=F64) * 0.01

    def pipeline(y1, cf, *v):
        g = lf.combine_instances(lf.graduated_map(4, 5, **dict(zip(gk, v[: len(gk)]))))
        e = lf.combine_instances(lf.elliptical_map(4, 5, **dict(zip(ek, v[len(gk) :]))))
        y3 = lf.apply_scale_map(lf.cubic_filter(y1, cf), lf.fuse_scale_maps(g, e, mode="deviation"))
        return lf.long_residual(y3, y1)

    out = pipeline(image, coeffs, *gp.values(), *ep.values())
    assert ((out > 0) & (out < 1)).all()
    _gradcheck(pipeline, [image, coeffs, *gp.values(), *ep.values()])
    s = torch.rand(1, 3, 4, 5, dtype=F64) * 0.5 + 0.6
    _gradcheck(lf.fuse_scale_maps, [s, s.flip(-1)])  # the sum mode, below its clamp


def test_batch_equals_each_sample_alone():
    gp, ep = random_graduated(3, 3), random_elliptical(3, 3)
    image, coeffs = torch.rand(3, 3, 6, 7, dtype=F64), torch.randn(3, 3, 20, dtype=F64)
    g, e = lf.graduated_map(6, 7, **gp), lf.elliptical_map(6, 7, **ep)
    f = lf.cubic_polynomial(image, coeffs)
    for b in range(3):
        one = slice(b, b + 1)
        torch.testing.assert_close(g[one], lf.graduated_map(6, 7, **{k: v[one] for k, v in gp.items()}))
        torch.testing.assert_close(e[one], lf.elliptical_map(6, 7, **{k: v[one] for k, v in ep.items()}))
        torch.testing.assert_close(f[one], lf.cubic_polynomial(image[one], coeffs[one]))
        # and each instance alone
        torch.testing.assert_close(g[one, 1:2], lf.graduated_map(6, 7, **{k: v[one, 1:2] for k, v in gp.items()}))


def test_dtype_follows_the_inputs():
    g = lf.graduated_map(3, 3, **random_graduated(1, 2, dtype=torch.float32))
    e = lf.elliptical_map(3, 3, **random_elliptical(1, 2, dtype=torch.float32))
    f = lf.cubic_filter(torch.rand(1, 3, 3, 3), torch.randn(1, 3, 20))
    assert g.dtype == e.dtype == f.dtype == torch.float32


# ---------------------------------------------------------------------------------------------------------
# Entry checks and layering


def test_entry_checks_print_the_actual_shape():
    p = grad_params()
    with pytest.raises(ValueError, match=r"slope .*\(B, N\).*\(1,\)"):
        lf.graduated_map(4, 4, **{**p, "slope": t(0.5)})
    with pytest.raises(ValueError, match=r"scale .*\(1, 1\)"):
        lf.graduated_map(4, 4, **{**p, "scale": t([1.0])})
    with pytest.raises(ValueError, match=r"intercept has shape \(2, 1\)"):
        lf.graduated_map(4, 4, **{**p, "intercept": t([0.1], [0.2])})
    with pytest.raises(ValueError, match="offset1 must be finite and > 0"):
        lf.graduated_map(4, 4, **{**p, "offset1": t([0.0])})
    with pytest.raises(ValueError, match=r"invert must lie in \[0, 1\]"):
        lf.graduated_map(4, 4, **{**p, "invert": t([1.5])})
    with pytest.raises(ValueError, match="height"):
        lf.graduated_map(0, 4, **p)
    e = random_elliptical(1, 1)
    with pytest.raises(ValueError, match="semi_b must be finite and > 0"):
        lf.elliptical_map(4, 4, **{**e, "semi_b": t([-0.1])})
    with pytest.raises(ValueError, match=r"coeffs .*got shape \(1, 3, 10\)"):
        lf.cubic_polynomial(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 10))
    with pytest.raises(ValueError, match=r"image .*got shape \(3, 4, 4\)"):
        lf.cubic_polynomial(torch.rand(3, 4, 4), torch.rand(1, 3, 20))
    with pytest.raises(ValueError, match=r"maps .*got shape \(1, 3, 4, 4\)"):
        lf.combine_instances(torch.rand(1, 3, 4, 4))
    with pytest.raises(ValueError, match=r"scale .*got shape \(1, 1, 4, 4\)"):
        lf.apply_scale_map(torch.rand(1, 3, 4, 4), torch.rand(1, 1, 4, 4))


def test_module_imports_only_torch_and_the_core_checks():
    tree = ast.parse(Path(lf.__file__).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            assert all(a.name == "torch" or a.name.startswith("torch.") for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.module in ("__future__", "anyres.checks") or node.module.split(".")[0] == "torch"
