"""anyres.enhancement.lmar_coords: LMAR's per-HR-pixel geometry against hand-computed grids, the reference code's
grid_sample construction, the back-projection residual and the banded resize products."""

from fractions import Fraction

import pytest
import torch
import torch.nn.functional as F

from anyres.enhancement.lmar_coords import (
    apply_axis_matrix,
    axis_offsets,
    back_projection_residual,
    covering_index,
    nonzero_span,
    relative_coords,
    resample_cell,
)
from anyres.ops.coords import centres, make_coord
from anyres.ops.resize import imresize, resize_matrix

pytestmark = pytest.mark.usefixtures("one_thread")


def _hand_axis(n_hr, n_lr):
    """Covering LR pixel and rel in half-LR-pixel units, from the definition with exact fractions."""
    index, rel = [], []
    for i in range(n_hr):
        pos = Fraction(2 * i + 1, 2) * n_lr / n_hr  # HR centre in LR pixel units
        k = int(pos)  # floor: the half-open LR pixel [k, k + 1)
        index.append(k)
        rel.append(float((pos - (k + Fraction(1, 2))) * 2))
    return index, rel


def test_scale_1p5_six_to_four_by_hand():
    # HR centres at 0.5, 1.5, ... HR px = 1/3, 1, 5/3, 7/3, 3, 11/3 LR px; centres at 1 and 3 sit on LR edges.
    index, rel = axis_offsets(6, 4, torch.float64)
    assert index.tolist() == [0, 1, 1, 2, 3, 3]
    assert rel.tolist() == pytest.approx([-1 / 3, -1.0, 1 / 3, -1 / 3, -1.0, 1 / 3], abs=1e-15)
    hand_index, hand_rel = _hand_axis(6, 4)
    assert index.tolist() == list(hand_index)
    assert rel.tolist() == pytest.approx(list(hand_rel))


def test_integer_scale_4_eight_to_two_by_hand():
    index, rel = axis_offsets(8, 2, torch.float64)
    assert index.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert rel.tolist() == [-0.75, -0.25, 0.25, 0.75] * 2  # exact: multiples of 1/4


def test_relative_coords_grid_at_chosen_pixels():
    grid = relative_coords((6, 8), (4, 2), torch.float64)  # rows scale 1.5, columns scale 4
    assert grid.shape == (2, 6, 8)
    assert grid[:, 2, 5].tolist() == pytest.approx([1 / 3, -0.25])
    assert grid[:, 1, 0].tolist() == pytest.approx([-1.0, -0.75])
    assert grid[:, 5, 7].tolist() == pytest.approx([1 / 3, 0.75])
    # separable: the row offset depends on the row only, the column offset on the column only
    assert torch.equal(grid[0], grid[0, :, :1].expand(6, 8)) and torch.equal(grid[1], grid[1, :1].expand(6, 8))


@pytest.mark.parametrize("n_hr,n_lr", [(7, 3), (10, 4), (23, 10), (9, 9), (5, 1), (1000, 337)])
def test_matches_definition_and_pixel_centres(n_hr, n_lr):
    index, rel = axis_offsets(n_hr, n_lr, torch.float64)
    hand_index, hand_rel = _hand_axis(n_hr, n_lr)
    assert index.tolist() == hand_index
    assert torch.allclose(rel, torch.tensor(hand_rel, dtype=torch.float64), atol=1e-12)
    # the same numbers in [-1, 1] coordinates: (centre_HR - centre_LR(k)) * n_lr
    via_coords = (centres(n_hr, torch.float64) - centres(n_lr, torch.float64)[index]) * n_lr
    assert torch.allclose(rel, via_coords, atol=1e-12)
    assert rel.min() >= -1 and rel.max() < 1
    assert torch.equal(covering_index(n_hr, n_lr), index)


def _reference_rel(hr_size, lr_size):
    """The released code's construction: nearest grid_sample of the LR centre grid at clamped HR centres."""
    (big_h, big_w), (h, w) = hr_size, lr_size
    c_u = make_coord(big_h, big_w, flatten=False, dtype=torch.float64)  # (H, W, 2)
    c_d = make_coord(h, w, flatten=False, dtype=torch.float64).permute(2, 0, 1)[None]  # (1, 2, h, w)
    grid = c_u.clamp(-1 + 1e-6, 1 - 1e-6).flip(-1)[None]
    q = F.grid_sample(c_d, grid, mode="nearest", align_corners=False)[0]  # (2, H, W)
    rel = c_u.permute(2, 0, 1) - q
    return rel * torch.tensor([h, w], dtype=torch.float64).view(2, 1, 1)


@pytest.mark.parametrize(
    "hr_size,lr_size", [((7, 10), (3, 4)), ((9, 12), (3, 4)), ((23, 17), (10, 5)), ((6, 8), (4, 2)), ((12, 9), (8, 6))]
)
def test_agrees_with_reference_code_except_on_ties(hr_size, lr_size):
    ours = relative_coords(hr_size, lr_size, torch.float64)
    ref = _reference_rel(hr_size, lr_size)
    ties = [torch.tensor([(2 * i + 1) * n % (2 * big) == 0 for i in range(big)]) for big, n in zip(hr_size, lr_size)]
    for axis, tie in enumerate(ties):
        line = ours[axis, :, 0] if axis == 0 else ours[axis, 0, :]
        ref_line = ref[axis, :, 0] if axis == 0 else ref[axis, 0, :]
        assert torch.allclose(line[~tie], ref_line[~tie], atol=1e-6)
        # on an LR edge: here always the right-hand pixel (rel = -1); the reference's rounding may pick either
        assert torch.all(line[tie] == -1.0)
        assert torch.all(ref_line[tie].abs() > 1 - 1e-5)


def test_cell():
    assert resample_cell((6, 8), (4, 2), torch.float64).tolist() == pytest.approx([4 / 3, 0.5])
    assert resample_cell((5, 5), (5, 5)).tolist() == [2.0, 2.0]


@pytest.mark.parametrize("hr_size,lr_size", [((4, 6), (5, 6)), ((4, 6), (4, 0)), ((0, 3), (0, 3))])
def test_rejects_upscales_and_empty_sizes(hr_size, lr_size):
    with pytest.raises(ValueError):
        relative_coords(hr_size, lr_size)


# -- back-projection residual -----------------------------------------------------------------------------


def test_back_projection_with_box_kernel_is_the_block_mean_deviation():
    # area down by 4 = 4x4 block means; box up by 4 = each mean repeated over its block
    hr = torch.arange(64, dtype=torch.float64).view(1, 1, 8, 8) ** 2 / 100
    res = back_projection_residual(hr, (2, 2), kernel="box", antialias=True)
    top_left = hr[0, 0, :4, :4]
    assert torch.allclose(res[0, 0, :4, :4], top_left - top_left.mean(), atol=1e-12)
    # a hand value: pixel (0, 0) is 0; its block is rows 0-3 x cols 0-3 of (8 r + c)^2 / 100
    block_mean = sum((8 * r + c) ** 2 for r in range(4) for c in range(4)) / 16 / 100
    assert res[0, 0, 0, 0].item() == pytest.approx(-block_mean)


@pytest.mark.parametrize("kernel,antialias", [("lanczos3", False), ("cubic", True)])
def test_back_projection_vanishes_on_constants_and_at_scale_one(kernel, antialias):
    const = torch.full((2, 3, 9, 7), 0.3, dtype=torch.float64)
    assert back_projection_residual(const, (4, 3), kernel, antialias).abs().max() < 1e-12
    x = torch.rand(1, 3, 9, 7, dtype=torch.float64)
    assert back_projection_residual(x, (9, 7), kernel, antialias).abs().max() < 1e-12
    res = back_projection_residual(x, (4, 3), kernel, antialias)
    up = imresize(imresize(x, size=(4, 3), kernel=kernel, antialias=antialias), size=(9, 7), kernel=kernel)
    assert torch.allclose(res, x - up, atol=1e-14)


def test_back_projection_gradcheck():
    x = torch.rand(1, 1, 6, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: back_projection_residual(t, (4, 3)), (x,))


# -- banded products --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "n_in,n_out,kernel,antialias",
    [(50, 13, "lanczos3", False), (50, 13, "cubic", True), (13, 50, "lanczos3", False), (9, 1, "cubic", True)],
)
@pytest.mark.parametrize("block", [1, 4, 256])
def test_apply_axis_matrix_equals_dense_product(n_in, n_out, kernel, antialias, block):
    mat = resize_matrix(n_in, n_out, kernel=kernel, antialias=antialias)
    x = torch.rand(2, 3, n_in, n_in, dtype=torch.float64)
    assert torch.allclose(apply_axis_matrix(x, mat, -1, block), x @ mat.t(), atol=1e-13)
    assert torch.allclose(apply_axis_matrix(x, mat, -2, block), mat @ x, atol=1e-13)


def test_nonzero_span_and_zero_blocks():
    mat = torch.zeros(4, 6, dtype=torch.float64)
    mat[1, 2], mat[2, 4] = 1.0, 2.0
    assert nonzero_span(mat) == (2, 5)
    assert nonzero_span(mat[:1]) == (0, 0)
    x = torch.rand(1, 6, dtype=torch.float64)
    assert torch.equal(apply_axis_matrix(x, mat, -1, block=1), x @ mat.t())
