import math

import pytest
import torch

import anyres.enhancement  # noqa: F401  (registers the networks)
import anyres.sr  # noqa: F401
from anyres.ops.coords import coord_to_index, make_cell, make_coord
from anyres.sr.liif import LIIF, _ensemble_weights
from anyres.sr.render import LIIFUpscaler
from conftest import tiny_liif_config


def _queries(b, h, w):
    coord = make_coord(h, w)[None].expand(b, -1, -1).contiguous()
    cell = make_cell(h, w, h * w)[None].expand(b, -1, -1).contiguous()
    return coord, cell


def test_coordinates_are_pixel_centres_row_first():
    c = make_coord(4, 2, flatten=False)
    assert torch.allclose(c[:, 0, 0], torch.tensor([-0.75, -0.25, 0.25, 0.75]))
    assert torch.allclose(c[0, :, 1], torch.tensor([-0.5, 0.5]))
    assert torch.equal(make_coord(4, 2)[3], c[1, 1])  # raster order
    assert torch.allclose(make_cell(4, 8, 3), torch.tensor([[0.5, 0.25]] * 3))


def test_coord_to_index_matches_nearest_grid_sample():
    n = 7
    img = torch.arange(n, dtype=torch.float32).view(1, 1, 1, n)
    x = torch.rand(500) * 2 - 1
    grid = torch.stack([x, torch.zeros_like(x)], -1).view(1, 1, -1, 2)
    sampled = torch.nn.functional.grid_sample(img, grid, mode="nearest", align_corners=False).flatten()
    assert torch.equal(sampled.long(), coord_to_index(x, n))
    # Centres map to their own pixel.
    assert torch.equal(coord_to_index(make_coord(1, n)[:, 1], n), torch.arange(n))


def test_paper_sizes_of_the_default_network():
    net = LIIF()
    assert sum(p.numel() for p in net.encoder.parameters()) == 1_220_416
    assert sum(p.numel() for p in net.imnet.parameters()) == 346_883
    assert net.imnet.hidden[0].in_features == 580


def test_ensemble_weights_sum_to_one_and_are_bilinear_inside():
    net = LIIF(tiny_liif_config())
    h, w = 5, 6
    coord = torch.tensor([[[0.13, -0.21], [0.5, 0.33]]])
    _, rel = net._members((h, w, 0, 0), w, coord)
    weights = _ensemble_weights(rel)[..., 0]
    assert torch.allclose(weights.sum(1), torch.ones(1, 2))
    # Bilinear weight of the top-left latent: (1 - dy) * (1 - dx), distances in latent units.
    r = (coord[0, 0, 0] + 1) * h / 2 - 0.5
    c = (coord[0, 0, 1] + 1) * w / 2 - 0.5
    dy, dx = float(r - math.floor(r)), float(c - math.floor(c))
    assert weights[0, 0, 0].item() == pytest.approx((1 - dy) * (1 - dx), abs=1e-5)
    assert weights[0, 3, 0].item() == pytest.approx(dy * dx, abs=1e-5)
    # Relative coordinates are scaled by the feature size: |rel| <= 2 per axis.
    assert rel.abs().max() <= 2 + 1e-5


@pytest.mark.parametrize("variant", [{}, {"feat_unfold": False}, {"local_ensemble": False}, {"cell_decode": False}])
def test_fast_and_exact_paths_equal_reference(variant, monkeypatch):
    monkeypatch.setenv("ANYRES_BF16", "1")  # the bf16 path, whether or not this CPU has native bf16
    net = LIIF(tiny_liif_config(**variant)).eval()
    lr = torch.rand(2, 3, 9, 11)
    coord, cell = _queries(2, 23, 17)
    with torch.no_grad():
        feat = net.encode(lr)
        ref = net.query(feat, coord, cell, mode="reference")
        exact = net.query(feat, coord, cell, mode="exact")
        fast = net.query(feat, coord, cell, mode="fast")
    assert (exact - ref).abs().max() <= 1e-5
    assert (fast - ref).abs().max() <= 4e-3
    assert (fast - exact).abs().max() > 1e-4  # bf16 really is used


def test_non_uniform_and_downscale_sizes():
    up = LIIFUpscaler(LIIF(tiny_liif_config()), mode="exact", tile=6)
    lr = torch.rand(1, 3, 12, 10)
    assert up.upscale(lr, (31, 13)).shape == (1, 3, 31, 13)
    assert up.upscale(lr, (5, 4)).shape == (1, 3, 5, 4)
    gray = up.upscale(lr[:, :1], (20, 20))
    assert gray.shape == (1, 1, 20, 20)


def test_bad_query_shapes_are_reported():
    net = LIIF(tiny_liif_config())
    feat = net.encode(torch.rand(1, 3, 5, 5))
    with pytest.raises(ValueError, match="cell"):
        net.query(feat, torch.zeros(1, 4, 2), None)
    with pytest.raises(ValueError, match=r"\(B, Q, 2\)"):
        net.query(feat, torch.zeros(4, 2), torch.zeros(4, 2))


def test_encoders_keep_the_lr_size_and_rdn_has_its_published_size():
    from anyres.registry import NETWORKS

    rdn = NETWORKS.build("rdn")
    assert 21.5e6 < sum(p.numel() for p in rdn.parameters()) < 22.5e6  # "~22 M" (RDN config B, no upsampler)
    small = NETWORKS.build("rdn", n_blocks=2, n_layers=2, growth=8, g0=8)
    assert small(torch.rand(1, 3, 7, 9)).shape == (1, 8, 7, 9)


@pytest.mark.parametrize(
    "name,args",
    [
        ("edsr-baseline", {"n_resblocks": 2, "n_feats": 4}),
        ("rdn", {"n_blocks": 1, "n_layers": 2, "growth": 4, "g0": 4}),
    ],
)
def test_encoder_radius_is_its_receptive_field(name, args):
    # Tiling is exact only if the margin covers the receptive field: check `radius` is tight.
    from anyres.registry import NETWORKS

    enc = NETWORKS.build(name, **args).double()
    for p in enc.parameters():
        p.data.uniform_(0.1, 0.2)  # positive weights: no accidental cancellation
    r = enc.radius
    x = torch.rand(1, 3, 2 * r + 9, 2 * r + 9, dtype=torch.float64)
    c = r + 4
    base = enc(x)[0, :, c, c]
    for d, should_change in ((r, True), (r + 1, False)):
        y = x.clone()
        y[0, :, c + d, c] += 1.0
        changed = not torch.allclose(enc(y)[0, :, c, c], base, atol=0, rtol=0)
        assert changed == should_change, (d, r)
