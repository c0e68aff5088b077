"""Tests for anyres.ops.resize (MATLAB-compatible imresize). Tensors are tiny so the file runs in seconds.

The independent oracle is ``bicubic_pytorch`` (a test-only dependency), which reproduces MATLAB's bicubic
``imresize`` to about 2e-6 (it computes in float32); it only supports the cubic kernel.
"""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch
from bicubic_pytorch.core import imresize as oracle_imresize
from bicubic_pytorch.core import resize_1d as oracle_resize_1d

from anyres.ops.resize import MODES, imresize, output_size, resize, resize_matrix

ORACLE_TOL = 1e-5
SIZES = [(13, 17), (20, 9), (11, 14)]
SCALES = [0.37, 0.5, 1 / 3, 1.7, 2, 3.3, 4]


def _rand(*shape, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=g, dtype=dtype)


# ----------------------------------------------------------------------------------------------- oracle


@pytest.mark.parametrize("hw", SIZES)
@pytest.mark.parametrize("scale", SCALES)
def test_matches_oracle_scale(hw, scale):
    x = _rand(1, 2, *hw, seed=hash((hw, scale)) % 1000)
    ours = imresize(x, scale=scale)
    ref = oracle_imresize(x, scale=scale).to(torch.float64)
    assert ours.shape == ref.shape == (1, 2, math.ceil(hw[0] * scale), math.ceil(hw[1] * scale))
    assert ours.dtype == torch.float64
    torch.testing.assert_close(ours, ref, atol=ORACLE_TOL, rtol=0)


@pytest.mark.parametrize("scale", [0.37, 1 / 3, 1.7, 3.3])
def test_matches_oracle_float32(scale):
    x = _rand(1, 3, 19, 14, dtype=torch.float32, seed=7)
    ours = imresize(x, scale=scale)
    ref = oracle_imresize(x, scale=scale)
    assert ours.dtype == torch.float32
    assert ours.shape == ref.shape
    torch.testing.assert_close(ours, ref, atol=ORACLE_TOL, rtol=0)


@pytest.mark.parametrize("size", [(7, 30), (40, 11), (15, 9), (5, 5), (15, 22), (31, 3)])
def test_matches_oracle_exact_size(size):
    # Separate H/W factors out/in, down on one axis and up on the other.
    x = _rand(1, 2, 15, 22, seed=3)
    ours = imresize(x, size=size)
    ref = oracle_imresize(x, sizes=size).to(torch.float64)
    assert tuple(ours.shape[-2:]) == size
    torch.testing.assert_close(ours, ref, atol=ORACLE_TOL, rtol=0)


@pytest.mark.parametrize("sh,sw", [(0.5, 2.0), (1.7, 0.37), (3.3, 1 / 3), (0.6, 0.6)])
def test_matches_oracle_separate_scales(sh, sw):
    # The oracle's public function takes one factor; its per-axis step takes any (size, scale).
    x = _rand(2, 1, 16, 21, dtype=torch.float32, seed=5)
    oh, ow = math.ceil(16 * sh), math.ceil(21 * sw)
    ref = oracle_resize_1d(x, -2, size=oh, scale=sh)
    ref = oracle_resize_1d(ref, -1, size=ow, scale=sw)
    ours = imresize(x, scale=(sh, sw))
    assert ours.shape == ref.shape == (2, 1, oh, ow)
    torch.testing.assert_close(ours, ref, atol=ORACLE_TOL, rtol=0)


def test_matlab_known_value():
    # MATLAB: imresize(reshape(0:15, 4, 4)', [3 3]) -> first row 0.75055 2.10044 3.45033
    x = torch.arange(16, dtype=torch.float64).reshape(4, 4)
    out = imresize(x, size=(3, 3))
    assert out.shape == (3, 3)
    expected = torch.tensor([0.75055, 2.10044, 3.45033], dtype=torch.float64)
    assert torch.allclose(out[0], expected, atol=5e-6, rtol=0)
    # The ramp is symmetric: the result is point-symmetric around the centre value 7.5.
    torch.testing.assert_close(out + out.flip(0, 1), torch.full_like(out, 15.0))


# ----------------------------------------------------------------------------------------------- invariants


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("scale", [0.37, 0.5, 1 / 3, 1.7, 2.5, 3])
def test_constant_stays_constant(mode, scale):
    x = torch.full((1, 2, 11, 14), 0.3, dtype=torch.float64)
    out = resize(x, scale=scale, mode=mode)
    assert out.shape == (1, 2, output_size(11, scale), output_size(14, scale))
    torch.testing.assert_close(out, torch.full_like(out, 0.3), atol=1e-12, rtol=0)


@pytest.mark.parametrize("n", [1, 3, 7, 9, 10, 13, 100])
@pytest.mark.parametrize("scale", ["0.37", "0.5", "0.3", "1.7", "2", "2.5", "3.3", "4"])
def test_output_size_is_ceil(n, scale):
    # ceil of the exact decimal product (floating noise such as 3 * 1.1 = 3.3000000000000003 is ignored).
    expected = max(1, math.ceil(Fraction(scale) * n))
    assert output_size(n, float(scale)) == expected
    out = imresize(torch.zeros(1, 1, n, 2), scale=(float(scale), 1.0))
    assert out.shape[-2] == expected and out.shape[-1] == 2


def test_output_size_third():
    assert output_size(3, 1 / 3) == 1
    assert output_size(9, 1 / 3) == 3
    assert output_size(10, 1 / 3) == 4
    assert output_size(1, 0.01) == 1


@pytest.mark.parametrize("kernel", ["cubic", "linear", "box", "lanczos3", "nearest"])
@pytest.mark.parametrize("n_in,n_out", [(10, 3), (10, 4), (7, 12), (5, 17), (9, 9), (1, 4), (6, 1)])
def test_resize_matrix_rows_sum_to_one(kernel, n_in, n_out):
    m = resize_matrix(n_in, n_out, kernel=kernel)
    assert m.shape == (n_out, n_in) and m.dtype == torch.float64
    torch.testing.assert_close(m.sum(dim=1), torch.ones(n_out, dtype=torch.float64), atol=1e-12, rtol=0)


def test_resize_matrix_identity_at_scale_one():
    torch.testing.assert_close(resize_matrix(8, 8, kernel="cubic"), torch.eye(8, dtype=torch.float64))


def test_resize_matrix_dtype_device_arguments():
    m = resize_matrix(6, 4, dtype=torch.float32, device="cpu")
    assert m.dtype == torch.float32 and m.device.type == "cpu"


@pytest.mark.parametrize("mode", ["bicubic", "lanczos", "area"])
def test_batched_equals_per_image(mode):
    x = _rand(3, 2, 12, 15, seed=11)
    batched = resize(x, scale=1.7, mode=mode)
    singles = torch.cat([resize(x[i : i + 1], scale=1.7, mode=mode) for i in range(3)])
    torch.testing.assert_close(batched, singles, atol=1e-12, rtol=0)
    # Channels are independent too, and extra leading dims are accepted.
    per_channel = torch.cat([resize(x[:, c : c + 1], scale=1.7, mode=mode) for c in range(2)], dim=1)
    torch.testing.assert_close(batched, per_channel, atol=1e-12, rtol=0)
    five_d = resize(x.reshape(1, 3, 2, 12, 15), scale=1.7, mode=mode)
    torch.testing.assert_close(five_d.reshape(batched.shape), batched, atol=1e-12, rtol=0)
    two_d = resize(x[0, 0], scale=1.7, mode=mode)
    torch.testing.assert_close(two_d, batched[0, 0], atol=1e-12, rtol=0)


@pytest.mark.parametrize("kwargs", [{"scale": 1.5}, {"scale": 0.6}, {"size": (3, 8)}])
def test_gradcheck(kwargs):
    x = _rand(1, 1, 5, 6, seed=2).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: imresize(t, **kwargs), (x,), eps=1e-6, atol=1e-6)


def test_gradient_of_sum_is_column_sum():
    # d(sum(out))/dx = (1^T Mh)^T (1^T Mw): an independent check of what autograd returns.
    x = _rand(1, 1, 7, 5, seed=4).requires_grad_(True)
    imresize(x, scale=1.6).sum().backward()
    mh, mw = resize_matrix(7, output_size(7, 1.6), 1.6), resize_matrix(5, output_size(5, 1.6), 1.6)
    expected = mh.sum(0)[:, None] * mw.sum(0)[None, :]
    torch.testing.assert_close(x.grad[0, 0], expected, atol=1e-12, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
def test_dtype_follows_input(dtype):
    x64 = _rand(1, 3, 10, 12, seed=6)
    x = x64.to(dtype)
    out = imresize(x, scale=1.5)
    assert out.dtype == dtype and out.device == x.device
    ref = imresize(x.to(torch.float64), scale=1.5)
    tol = {torch.float32: 1e-6, torch.float64: 1e-12, torch.bfloat16: 1e-2, torch.float16: 2e-3}[dtype]
    torch.testing.assert_close(out.to(torch.float64), ref, atol=tol, rtol=tol)


def test_device_follows_input():
    x = torch.empty(1, 3, 10, 12, device="meta")
    out = imresize(x, scale=0.5)
    assert out.device.type == "meta" and out.shape == (1, 3, 5, 6)


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_area_integer_downscale_is_block_mean(factor):
    x = _rand(2, 3, 12, 24, seed=factor)
    out = resize(x, scale=1 / factor, mode="area")
    blocks = x.reshape(2, 3, 12 // factor, factor, 24 // factor, factor).mean(dim=(3, 5))
    torch.testing.assert_close(out, blocks, atol=1e-12, rtol=0)


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_nearest_integer_upscale_is_repeat(factor):
    x = _rand(1, 2, 5, 7, seed=factor)
    out = resize(x, scale=factor, mode="nearest")
    expected = x.repeat_interleave(factor, dim=-2).repeat_interleave(factor, dim=-1)
    assert torch.equal(out, expected)


def test_nearest_integer_downscale_picks_pixels():
    # MATLAB's nearest never antialiases: every output value is one of the inputs.
    x = _rand(1, 1, 12, 12, seed=9)
    out = resize(x, scale=0.5, mode="nearest")
    assert out.shape == (1, 1, 6, 6)
    assert all(bool((x == v).any()) for v in out.flatten())


def test_upscale_then_area_downscale_roundtrip():
    # Nearest x3 then box /3 recovers the original exactly (each block is constant).
    x = _rand(1, 1, 6, 5, seed=8)
    up = resize(x, scale=3, mode="nearest")
    torch.testing.assert_close(resize(up, scale=1 / 3, mode="area"), x, atol=1e-12, rtol=0)


def test_no_antialias_changes_downscale_only():
    x = _rand(1, 1, 16, 16, seed=12)
    assert not torch.allclose(imresize(x, scale=0.5, antialias=False), imresize(x, scale=0.5))
    torch.testing.assert_close(imresize(x, scale=2, antialias=False), imresize(x, scale=2), atol=0, rtol=0)


# ----------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "bad,exc",
    [
        (torch.arange(12).reshape(1, 1, 3, 4), TypeError),  # integer tensor
        ([[0.0, 1.0], [1.0, 0.0]], TypeError),  # not a tensor
        (torch.rand(5), ValueError),  # 1-D
    ],
)
def test_bad_input_tensor(bad, exc):
    with pytest.raises(exc):
        imresize(bad, scale=2)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"scale": 0},
        {"scale": -1.5},
        {"scale": (2.0, -1.0)},
        {"scale": (1.0, 2.0, 3.0)},
        {"scale": float("inf")},
        {"scale": float("nan")},
        {"size": (0, 4)},
        {"size": (4, -1)},
        {"size": (5,)},
        {"scale": 2, "kernel": "bogus"},
    ],
)
def test_bad_arguments_raise_value_error(kwargs):
    with pytest.raises(ValueError):
        imresize(torch.rand(1, 1, 6, 7), **kwargs)


def test_string_scale_is_type_error():
    with pytest.raises(TypeError):
        imresize(torch.rand(1, 1, 6, 7), scale="22")


def test_bad_mode_and_matrix_arguments():
    with pytest.raises(ValueError, match="mode"):
        resize(torch.rand(1, 1, 6, 7), scale=2, mode="cubic")  # a kernel name, not a mode name
    with pytest.raises(ValueError):
        resize_matrix(0, 4)
    with pytest.raises(ValueError):
        resize_matrix(4, 4, kernel="gaussian")
