"""DeepLPF's local parametric filters as pure functions (Moran et al., CVPR 2020, arXiv 2003.13985).

Graduated (Eqs. 1-3) and elliptical (Eq. 4) filters give ``(B, N, C, H, W)`` gain maps between 1 and their
scale; the cubic filter (Eq. 6) gives ``Y2 = clamp(Y1 + f(x, y, Y1), 0, 1)``; instances multiply (Eq. 7) and the
two types fuse into ``S``; ``Y3 = clamp(Y2 S, 0, 1)``. Coordinates ``x`` (width) and ``y`` (height) in [0, 1] at
pixel centres. The coordinate convention and the 13 differences from the released code: docs/methods/deeplpf.md.
"""

from __future__ import annotations

import torch

from anyres.checks import check_image, check_int, check_positive, check_same_shape, describe

__all__ = [
    "CUBIC_TERMS",
    "FUSION_MODES",
    "unit_grid",
    "straight_through_bit",
    "graduated_map",
    "elliptical_map",
    "cubic_polynomial",
    "cubic_filter",
    "combine_instances",
    "fuse_scale_maps",
    "apply_scale_map",
    "long_residual",
]

# The 20 monomials x^p y^q i^r of total degree <= 3, as (p, q, r), in the order of the paper's
# coefficients A..T: x^3, x^2 y, x^2 i, x^2, x y^2, x y i, x y, x i^2, x i, x, y^3, y^2 i, y^2, y i^2,
# y i, y, i^3, i^2, i, 1.
CUBIC_TERMS: tuple[tuple[int, int, int], ...] = (
    (3, 0, 0),
    (2, 1, 0),
    (2, 0, 1),
    (2, 0, 0),
    (1, 2, 0),
    (1, 1, 1),
    (1, 1, 0),
    (1, 0, 2),
    (1, 0, 1),
    (1, 0, 0),
    (0, 3, 0),
    (0, 2, 1),
    (0, 2, 0),
    (0, 1, 2),
    (0, 1, 1),
    (0, 1, 0),
    (0, 0, 3),
    (0, 0, 2),
    (0, 0, 1),
    (0, 0, 0),
)

FUSION_MODES = ("sum", "deviation")


# ---------------------------------------------------------------------------------------------------------
# Validation


def _check_params(shapes: dict[str, tuple[torch.Tensor, int]]) -> tuple[int, int, int | None]:
    """Check ``name -> (tensor, ndim)``: float tensors of shape (B, N) or (B, N, C) with common B, N, C.

    Returns ``(B, N, C)``, ``C`` being None if no 3-d parameter was given.
    """
    ref = None
    batch = count = channels = None
    for name, (value, ndim) in shapes.items():
        if not isinstance(value, torch.Tensor) or not value.is_floating_point() or value.dim() != ndim:
            want = "(B, N)" if ndim == 2 else "(B, N, C)"
            raise ValueError(f"{name} must be a float tensor of shape {want}, got shape {describe(value)}")
        if ref is None:
            ref, batch, count = value, value.shape[0], value.shape[1]
        elif value.dtype != ref.dtype or value.device != ref.device:
            raise ValueError(
                f"{name} has dtype {value.dtype} on {value.device}, the other parameters {ref.dtype} on {ref.device}"
            )
        if value.shape[:2] != (batch, count):
            raise ValueError(
                f"{name} has shape {tuple(value.shape)}, expected (B, N) = ({batch}, {count}) leading dimensions"
            )
        if ndim == 3:
            if channels is None:
                channels = value.shape[2]
            elif value.shape[2] != channels:
                raise ValueError(f"{name} has shape {tuple(value.shape)}, expected {channels} channels")
    if batch == 0 or count == 0 or channels == 0:
        raise ValueError(f"parameters must have B, N, C >= 1, got B={batch}, N={count}, C={channels}")
    assert batch is not None and count is not None  # shapes was not empty
    return batch, count, channels


# ---------------------------------------------------------------------------------------------------------
# Coordinates and the inversion bit


def _pixel_indices(
    index: torch.Tensor | None, size: int, what: str, dtype: torch.dtype, device: torch.device | str | None
) -> torch.Tensor:
    if index is None:
        return torch.arange(size, dtype=dtype, device=device)
    if not isinstance(index, torch.Tensor) or index.dim() != 1 or index.is_floating_point() or index.numel() == 0:
        raise ValueError(f"{what} must be a non-empty 1-d integer tensor of pixel indices, got {describe(index)}")
    if int(index.min()) < 0 or int(index.max()) >= size:
        raise ValueError(f"{what} must lie in [0, {size}), got [{int(index.min())}, {int(index.max())}]")
    return index.to(device=device, dtype=dtype)  # exact: indices are far below 2^24


def unit_grid(
    height: int,
    width: int,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
    rows: torch.Tensor | None = None,
    cols: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates ``(x, y)`` in (0, 1), each ``(H, W)``: ``x = (j + 0.5) / W``, ``y = (i + 0.5) / H``.

    ``x`` varies along the width (columns, rightwards), ``y`` along the height (rows, downwards). ``rows``,
    ``cols``: 1-d integer tensors of pixel indices (default: all) give the grid of those rows and columns of the
    ``height x width`` image only, ``(len(rows), len(cols))``, with the same values as that part of the full grid
    (how a large image is filtered a tile at a time).
    """
    check_int(height, "height", minimum=1)
    check_int(width, "width", minimum=1)
    y = (_pixel_indices(rows, height, "rows", dtype, device) + 0.5) / height
    x = (_pixel_indices(cols, width, "cols", dtype, device) + 0.5) / width
    return x.expand(y.shape[0], x.shape[0]), y[:, None].expand(y.shape[0], x.shape[0])


def straight_through_bit(logit: torch.Tensor) -> torch.Tensor:
    """The binary inversion bit of the graduated filter, with a straight-through gradient (Sec. 3.2.2).

    ``logit``: float tensor of any shape, any real value. Returns a tensor of the same shape, dtype and
    device whose values are exactly 0 or 1.

    Forward: ``1`` where ``logit > 0``, else ``0`` (the paper's ``(sgn(g) + 1) / 2``, with ``g = 0`` sent to 0
    rather than to the 0.5 that ``sgn(0) = 0`` would give).

    Backward: the gradient of the soft bit ``(clamp(g, -1, 1) + 1) / 2``, i.e. ``d bit / d g = 1/2`` where
    ``|g| <= 1`` (both ends included) and ``0`` elsewhere: the paper's straight-through estimator, which
    passes the gradient of ``sgn`` through unchanged on ``|g| <= 1`` and zeroes it outside, times the 1/2 of
    the affine map to {0, 1}.
    """
    if not isinstance(logit, torch.Tensor) or not logit.is_floating_point():
        raise ValueError(
            f"logit must be a float tensor, got {describe(logit)} of dtype {getattr(logit, 'dtype', None)}"
        )
    hard = (logit > 0).to(logit.dtype)
    soft = 0.5 * (logit.clamp(-1.0, 1.0) + 1.0)
    # soft - soft.detach() is exactly 0 in the forward pass and carries soft's gradient backwards.
    return hard + (soft - soft.detach())


# ---------------------------------------------------------------------------------------------------------
# Graduated and elliptical filters


def graduated_map(
    height: int,
    width: int,
    *,
    slope: torch.Tensor,
    intercept: torch.Tensor,
    offset1: torch.Tensor,
    offset2: torch.Tensor,
    invert: torch.Tensor,
    scale: torch.Tensor,
    rows: torch.Tensor | None = None,
    cols: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-instance scale maps of ``N`` graduated filters (Eqs. 1-3), ``(B, N, C, H, W)``.

    ``rows``, ``cols``: only those pixels of the ``height x width`` image (see :func:`unit_grid`).

    Parameters (``(B, N)`` unless said otherwise; lengths in the normalised units of docs/methods/deeplpf.md):

    - ``slope`` ``m``: any real, ``dy / dx`` of the central line ``y = m x + c``;
    - ``intercept`` ``c``: any real (the image spans [0, 1]);
    - ``offset1`` ``o1 > 0``, ``offset2`` ``o2 > 0``: vertical offsets of line 1 (``y = m x + c + o1``) and
      line 2 (``y = m x + c - o2``) from the central line;
    - ``invert`` ``g`` in [0, 1]: the inversion bit, 0 or 1 from :func:`straight_through_bit`; values in
      between blend the plain and inverted maps linearly;
    - ``scale`` ``s``: ``(B, N, C)``, any real (DeepLPF uses (0, 2)); the factor applied at full strength.

    With ``l`` the perpendicular signed distance to the central line and ``d_k = o_k cos(atan m)`` the
    distances of lines 1 and 2 from it (so ``l / d_k = (y - m x - c) / o_k``)::

        a = min(1/2 (1 + l / d1), 1)  where l >= 0        (Eq. 1: 50 % on the line, 100 % from line 1 on)
        a = max(1/2 (1 + l / d2), 0)  where l < 0         (Eq. 2: 0 % from line 2 on)
        w = (1 - g) a + g (1 - a)                          (Eq. 3: the bit swaps the two sides)
        map = 1 + (s - 1) w                                (s at full strength, 1 = no change at 0 %)

    Without inversion the full effect is on the side of growing ``y`` (below the line in the image).
    Every value lies between 1 and ``s`` (inclusive), so in [0, 2] when ``s`` is.
    """
    check_int(height, "height", minimum=1)
    check_int(width, "width", minimum=1)
    _check_params(
        {
            "slope": (slope, 2),
            "intercept": (intercept, 2),
            "offset1": (offset1, 2),
            "offset2": (offset2, 2),
            "invert": (invert, 2),
            "scale": (scale, 3),
        }
    )
    check_positive(offset1, "offset1")
    check_positive(offset2, "offset2")
    if not bool(((invert >= 0) & (invert <= 1)).all()):
        raise ValueError(f"invert must lie in [0, 1], got values in [{invert.min().item()}, {invert.max().item()}]")
    x, y = unit_grid(height, width, dtype=slope.dtype, device=slope.device, rows=rows, cols=cols)

    def per_instance(p: torch.Tensor) -> torch.Tensor:  # (B, N) -> (B, N, 1, 1) against (H, W)
        return p[:, :, None, None]

    vertical = y - per_instance(slope) * x - per_instance(intercept)  # (B, N, H, W); l / d_k = vertical / o_k
    above = torch.clamp(0.5 * (1.0 + vertical / per_instance(offset1)), max=1.0)
    below = torch.clamp(0.5 * (1.0 + vertical / per_instance(offset2)), min=0.0)
    strength = torch.where(vertical >= 0, above, below)
    g = per_instance(invert)
    weight = (1.0 - g) * strength + g * (1.0 - strength)
    return 1.0 + (scale[:, :, :, None, None] - 1.0) * weight[:, :, None]


def _safe_sqrt(q: torch.Tensor) -> torch.Tensor:
    """sqrt of q >= 0 whose gradient at q = 0 is 0 rather than inf (the ellipse's centre pixel)."""
    positive = q > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, q, torch.ones_like(q))), torch.zeros_like(q))


def elliptical_map(
    height: int,
    width: int,
    *,
    centre_x: torch.Tensor,
    centre_y: torch.Tensor,
    semi_a: torch.Tensor,
    semi_b: torch.Tensor,
    angle: torch.Tensor,
    scale: torch.Tensor,
    rows: torch.Tensor | None = None,
    cols: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-instance scale maps of ``N`` elliptical filters (Eq. 4), ``(B, N, C, H, W)``.

    ``rows``, ``cols``: only those pixels of the ``height x width`` image (see :func:`unit_grid`).

    Parameters (``(B, N)`` unless said otherwise; lengths in the normalised units of docs/methods/deeplpf.md):

    - ``centre_x`` ``h``, ``centre_y`` ``k``: any real, the centre (the image spans [0, 1]);
    - ``semi_a`` ``a > 0``, ``semi_b`` ``b > 0``: semi-axes; ``a`` lies along the direction ``angle``;
    - ``angle`` ``theta``: radians, any real; the direction of the ``a`` axis measured from +x towards +y
      (clockwise on screen, since ``y`` grows downwards); ``theta`` and ``theta + pi`` give the same map;
    - ``scale`` ``s``: ``(B, N, C)``, any real (DeepLPF uses (0, 2)); the factor at the centre.

    With ``u = (x - h) cos theta + (y - k) sin theta`` and ``v = (x - h) sin theta - (y - k) cos theta``,
    the elliptical radius ``rho = sqrt(u^2 / a^2 + v^2 / b^2)`` is 0 at the centre and 1 on the ellipse
    (Eq. 4 is ``rho <= 1``); the factor decays linearly along every ray from ``s`` to 1 at the boundary::

        map = 1 + (s - 1) max(1 - rho, 0)

    Outside the ellipse the map is 1. Every value lies between 1 and ``s`` (inclusive).
    """
    check_int(height, "height", minimum=1)
    check_int(width, "width", minimum=1)
    _check_params(
        {
            "centre_x": (centre_x, 2),
            "centre_y": (centre_y, 2),
            "semi_a": (semi_a, 2),
            "semi_b": (semi_b, 2),
            "angle": (angle, 2),
            "scale": (scale, 3),
        }
    )
    check_positive(semi_a, "semi_a")
    check_positive(semi_b, "semi_b")
    x, y = unit_grid(height, width, dtype=centre_x.dtype, device=centre_x.device, rows=rows, cols=cols)

    def per_instance(p: torch.Tensor) -> torch.Tensor:
        return p[:, :, None, None]

    dx = x - per_instance(centre_x)
    dy = y - per_instance(centre_y)
    cos, sin = torch.cos(per_instance(angle)), torch.sin(per_instance(angle))
    u = dx * cos + dy * sin
    v = dx * sin - dy * cos
    rho = _safe_sqrt((u / per_instance(semi_a)) ** 2 + (v / per_instance(semi_b)) ** 2)
    weight = torch.clamp(1.0 - rho, min=0.0)  # (B, N, H, W)
    return 1.0 + (scale[:, :, :, None, None] - 1.0) * weight[:, :, None]


# ---------------------------------------------------------------------------------------------------------
# Cubic polynomial filter


def cubic_polynomial(
    image: torch.Tensor, coeffs: torch.Tensor, *, grid: tuple[torch.Tensor, torch.Tensor] | None = None
) -> torch.Tensor:
    """The per-channel cubic ``f_c(x, y, i_c)`` of Eq. 6, ``(B, C, H, W)``.

    ``image``: ``(B, C, H, W)`` float, any real (DeepLPF applies it to the unbounded backbone image ``Y1``);
    ``i_c`` is channel ``c``'s own intensity, so no channel sees another (there are no cross-channel terms).
    ``coeffs``: ``(B, C, 20)``, any real, the coefficients ``A..T`` of :data:`CUBIC_TERMS` per channel; a
    head's 60 outputs ordered R 0-19, G 20-39, B 40-59 are ``coeffs.view(B, 3, 20)``.
    ``x, y`` are the normalised pixel centres of docs/methods/deeplpf.md; ``grid``: the ``(x, y)`` of the image's
    pixels when it is a part of a larger image (:func:`unit_grid` with ``rows``, ``cols``), default the full grid.
    """
    b, c, h, w = check_image(image, "image", nonempty=True)
    if (
        not isinstance(coeffs, torch.Tensor)
        or not coeffs.is_floating_point()
        or coeffs.shape != (b, c, len(CUBIC_TERMS))
    ):
        n = len(CUBIC_TERMS)
        raise ValueError(
            f"coeffs must be a float tensor of shape (B, C, {n}) = ({b}, {c}, {n}) for an image "
            f"of shape {tuple(image.shape)}, got shape {describe(coeffs)}"
        )
    coeffs = coeffs.to(dtype=image.dtype)
    if grid is None:
        x, y = unit_grid(h, w, dtype=image.dtype, device=image.device)
    else:
        x, y = grid
        if tuple(x.shape) != (h, w) or tuple(y.shape) != (h, w):
            raise ValueError(f"grid must be two ({h}, {w}) tensors for an image of shape {tuple(image.shape)}")
    # Group the terms by the power of i: f = ((P3 i + P2) i + P1) i + P0, each P_r a polynomial in (x, y)
    # shared by the batch, so no (B, C, 20, H, W) stack is ever built.
    result = None
    for power in (3, 2, 1, 0):
        index = [n for n, (_, _, r) in enumerate(CUBIC_TERMS) if r == power]
        monomials = torch.stack([x**p * y**q for p, q, _ in (CUBIC_TERMS[n] for n in index)])  # (n, H, W)
        part = torch.einsum("bck,khw->bchw", coeffs[:, :, index], monomials)
        result = part if result is None else result * image + part
    assert result is not None
    return result


def cubic_filter(
    image: torch.Tensor,
    coeffs: torch.Tensor,
    *,
    residual: bool = True,
    grid: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """The cubic filter's output image ``Y2``, ``(B, C, H, W)`` in [0, 1].

    ``clamp(image + f, 0, 1)`` with ``f = cubic_polynomial(image, coeffs)`` (the released code's residual
    form, the default), or ``clamp(f, 0, 1)`` with ``residual=False`` (Eq. 6 read as ``i' = f``). Shapes and
    ranges of the inputs, and ``grid``, as in :func:`cubic_polynomial`.
    """
    f = cubic_polynomial(image, coeffs, grid=grid)
    return torch.clamp(image + f if residual else f, 0.0, 1.0)


# ---------------------------------------------------------------------------------------------------------
# Fusion


def combine_instances(maps: torch.Tensor) -> torch.Tensor:
    """One filter type's scale map from its instances: ``clamp(prod_n maps[:, n], 0, 2)`` (Eq. 7), ``(B, C, H, W)``.

    ``maps``: ``(B, N, C, H, W)`` float, as returned by :func:`graduated_map` or :func:`elliptical_map`.
    """
    if not isinstance(maps, torch.Tensor) or not maps.is_floating_point() or maps.dim() != 5:
        raise ValueError(f"maps must be a float (B, N, C, H, W) tensor, got shape {describe(maps)}")
    return torch.clamp(torch.prod(maps, dim=1), 0.0, 2.0)


def fuse_scale_maps(graduated: torch.Tensor, elliptical: torch.Tensor, *, mode: str = "sum") -> torch.Tensor:
    """The fused scale map ``S`` of the two-stream path, ``(B, C, H, W)`` in [0, 2].

    ``graduated``, ``elliptical``: ``(B, C, H, W)`` float, each from :func:`combine_instances` (values in
    [0, 2], neutral at 1). ``mode='sum'`` (paper and released code): ``clamp(s_g + s_e, 0, 2)``, neutral at 2;
    ``mode='deviation'`` (the official v2 fix): ``clamp(1 + (s_g - 1) + (s_e - 1), 0, 2)``, neutral at 1.
    """
    check_image(graduated, "graduated", nonempty=True)
    check_same_shape(elliptical, "elliptical", graduated, "graduated")
    if mode == "sum":
        fused = graduated + elliptical
    elif mode == "deviation":
        fused = graduated + elliptical - 1.0
    else:
        raise ValueError(f"unknown fusion mode {mode!r}; valid modes: {', '.join(FUSION_MODES)}")
    return torch.clamp(fused, 0.0, 2.0)


def apply_scale_map(image: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``Y3 = clamp(image * scale, 0, 1)``, ``(B, C, H, W)`` in [0, 1].

    ``image``: ``(B, C, H, W)`` float, nominally in [0, 1] (the cubic filter's ``Y2``); ``scale``: the same
    shape, nominally in [0, 2] (:func:`fuse_scale_maps`).
    """
    check_image(image, "image", nonempty=True)
    check_same_shape(scale, "scale", image, "image")
    return torch.clamp(image * scale, 0.0, 1.0)


def long_residual(filtered: torch.Tensor, backbone: torch.Tensor) -> torch.Tensor:
    """DeepLPF's output ``clamp(Y3 + Y1, 0, 1)``, ``(B, C, H, W)`` in [0, 1].

    ``filtered``: ``Y3`` from :func:`apply_scale_map`, ``(B, C, H, W)`` in [0, 1]; ``backbone``: ``Y1``, the same
    shape, any real.
    """
    check_image(filtered, "filtered", nonempty=True)
    check_same_shape(backbone, "backbone", filtered, "filtered")
    return torch.clamp(filtered + backbone, 0.0, 1.0)
