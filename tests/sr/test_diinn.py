import math

import pytest
import torch
import torch.nn.functional as F

import anyres.enhancement  # noqa: F401  (registers the networks)
import anyres.sr  # noqa: F401
from anyres.errors import RegistryError
from anyres.hub import load_network, save_network
from anyres.ops.coords import make_cell, make_coord
from anyres.registry import NETWORKS
from anyres.sr.diinn import DIINN, DIINNConfig, nearest_index, synthesis_input


def tiny_diinn_config(**overrides):
    cfg = {"encoder": {"name": "edsr-baseline", "args": {"n_resblocks": 1, "n_feats": 8}}, "hidden": [16, 16, 16]}
    cfg.update(overrides)
    return cfg


def _queries(b, h, w):
    coord = make_coord(h, w)[None].expand(b, -1, -1).contiguous()
    cell = make_cell(h, w, h * w)[None].expand(b, -1, -1).contiguous()
    return coord, cell


def _random_queries(b, q, scale=3.0, lr_size=(9, 11)):
    coord = torch.rand(b, q, 2) * 2 - 1
    cell = torch.tensor([2.0 / (lr_size[0] * scale), 2.0 / (lr_size[1] * scale)]).expand(b, q, 2).contiguous()
    return coord, cell


# -- config -------------------------------------------------------------------------------------------
def test_config_is_validated():
    assert DIINNConfig.from_dict({}).hidden == [256, 256, 256, 256]
    with pytest.raises(ValueError, match="unknown DIINN config keys"):
        DIINNConfig.from_dict({"hiden": [4]})
    with pytest.raises(ValueError, match="scale_input"):
        DIINNConfig.from_dict({"scale_input": "s"})
    with pytest.raises(ValueError, match="hidden"):
        DIINNConfig.from_dict({"hidden": []})
    with pytest.raises(ValueError, match="encoder"):
        DIINNConfig.from_dict({"encoder": "rdn"})
    net = NETWORKS.build("diinn", **tiny_diinn_config())
    assert isinstance(net, DIINN) and net.config_dict()["arch"] == "diinn"


# -- the shared model contract ------------------------------------------------------------------------
@pytest.mark.parametrize("variant", [{}, {"feat_unfold": False}, {"scale_input": "inv_scale"}])
@pytest.mark.parametrize("size", [(23, 17), (27, 22)])  # 27 x 22 from 18 x 11: ties on cell edges
def test_fast_and_exact_paths_equal_reference(variant, size, monkeypatch):
    monkeypatch.setenv("ANYRES_BF16", "1")  # the bf16 path, whether or not this CPU has native bf16
    net = DIINN(tiny_diinn_config(**variant)).eval()
    lr = torch.rand(2, 3, 18, 11)
    coord, cell = _queries(2, *size)
    with torch.no_grad():
        feat = net.encode(lr)
        ref = net.query(feat, coord, cell, mode="reference")
        exact = net.query(feat, coord, cell, mode="exact")
        fast = net.query(feat, coord, cell, mode="fast")
    assert (exact - ref).abs().max() <= 1e-5
    assert (fast - ref).abs().max() <= 4e-3
    assert (fast - exact).abs().max() > 1e-4  # bf16 really is used


def test_radius_is_the_tiling_margin():
    # One 3x3 unfold beyond the encoder's field; no ensemble neighbour is read.
    assert DIINN(tiny_diinn_config()).radius == 2 * 1 + 2 + 1
    assert DIINN(tiny_diinn_config(feat_unfold=False)).radius == 4
    net = DIINN(tiny_diinn_config()).eval()
    proj = net.project(net.encode(torch.rand(1, 3, 6, 6)))
    with pytest.raises(ValueError, match="outside the projected block"):
        net.query_grid(proj, torch.tensor([0.9]), torch.tensor([0.0]), torch.tensor([0.1, 0.1]), grid=(12, 6, 0, 0))


def test_load_network_rejects_unknown_architectures(tmp_path):
    net = DIINN(tiny_diinn_config())
    for arch in ("nope", "edsr-baseline", None):  # an encoder is registered but is no saveable arch
        save_network(net, tmp_path / str(arch), extra={"arch": arch})
        with pytest.raises(RegistryError, match=f"unknown architecture {arch!r}"):
            load_network(tmp_path / str(arch))


def test_bad_queries_are_reported():
    net = DIINN(tiny_diinn_config())
    feat = net.encode(torch.rand(1, 3, 5, 5))
    with pytest.raises(ValueError, match="cell"):
        net.query(feat, torch.zeros(1, 4, 2), None)
    with pytest.raises(ValueError, match=r"\(B, Q, 2\)"):
        net.query(feat, torch.zeros(4, 2), torch.zeros(4, 2))
    with pytest.raises(ValueError, match=r"feat must be \(B, 8, h, w\)"):
        net.query(feat[:, :3], torch.zeros(1, 4, 2), torch.zeros(1, 4, 2))


# -- DIINN-specific -----------------------------------------------------------------------------------
def test_synthesis_input_is_the_hand_computed_value():
    # Latent grid 4 x 5, output 16 x 20 (x4), query (0.1, -0.3).
    # Row: cell index floor(1.1 * 4 / 2) = 2, centre -1 + 5/4 = 0.25, (0.1 - 0.25) * 4 = -0.6.
    # Col: floor(0.7 * 5 / 2) = 1, centre -1 + 3/5 = -0.4, (-0.3 + 0.4) * 5 = 0.5.
    # Scale: (4 * 5) / (16 * 20) = 1/16 = 1/s^2 (code), sqrt of it = 1/4 = 1/s (paper).
    coord = torch.tensor([[[0.1, -0.3]]])
    cell = torch.tensor([[[2 / 16, 2 / 20]]])
    p = synthesis_input(coord, cell, (4, 5))
    assert torch.allclose(p, torch.tensor([[[-0.6, 0.5, 1 / 16]]]), atol=1e-6)
    assert torch.allclose(synthesis_input(coord, cell, (4, 5), "inv_scale")[..., 2], torch.tensor(0.25))

    # The network's decoder sees exactly that p and the unfolded code of LR pixel (2, 1).
    net = DIINN(tiny_diinn_config()).eval()
    feat = torch.randn(1, 8, 4, 5)
    z = F.unfold(feat, 3, padding=1).view(1, 72, 4, 5)[0, :, 2, 1]
    p = torch.tensor([-0.6, 0.5, 1 / 16])
    with torch.no_grad():
        m = torch.relu(net.modulation[0](z))
        s = m * torch.sin(net.synthesis[0](p))
        for mod, syn in zip(net.modulation[1:], net.synthesis[1:]):
            m = torch.relu(mod(torch.cat((s, z))))
            s = m * torch.sin(syn(s))
        expected = net.out(s) * 0.5 + 0.5
        for mode in ("exact", "reference"):
            assert torch.allclose(net.query(feat, coord, cell, mode=mode)[0, 0], expected, atol=1e-6), mode


def _index_probe(h, w):
    """A DIINN whose output reads back channel 0 of the selected latent: rgb = 0.5 + 0.5 * z_0."""
    net = DIINN(tiny_diinn_config(feat_unfold=False, hidden=[4])).eval()
    with torch.no_grad():
        for layer in (net.modulation[0], net.synthesis[0], net.out):
            layer.weight.zero_()
            layer.bias.zero_()
        net.modulation[0].weight[0, 0] = 1.0
        net.synthesis[0].bias.fill_(math.pi / 2)  # sin = 1: the synthesis branch passes m through
        net.out.weight[:, 0] = 1.0
    feat = torch.zeros(1, 8, h, w)
    feat[0, 0] = torch.arange(h * w, dtype=torch.float32).view(h, w) + 1.0  # distinct and positive
    return net, feat


def test_nearest_feature_is_the_lr_pixel_with_the_nearest_centre():
    h, w = 6, 7
    net, feat = _index_probe(h, w)
    coord = torch.rand(1, 2000, 2) * 2 - 1
    cell = torch.full_like(coord, 0.05)
    # Brute force: distance to every centre, per axis.
    rows = (coord[0, :, 0, None] - make_coord(h, 1)[:, 0]).abs()
    cols = (coord[0, :, 1, None] - make_coord(1, w)[:, 1]).abs()
    expected = rows.argmin(1) * w + cols.argmin(1) + 1.0
    with torch.no_grad():
        for mode in ("exact", "fast", "reference"):
            picked = (net.query(feat, coord, cell, mode=mode)[0, :, 0] - 0.5) * 2
            assert torch.equal(picked.round(), expected), mode
    # Same axis rule on its own, and centres select themselves.
    assert torch.equal(nearest_index(coord[0, :, 0], h), rows.argmin(1))
    assert torch.equal(nearest_index(make_coord(1, w)[:, 1], w), torch.arange(w))


@pytest.mark.parametrize("n,big_n", [(6, 24), (7, 21), (4, 6), (5, 8), (2, 3)])
def test_dense_grid_selection_is_nearest_exact_with_ties_going_up(n, big_n):
    # On a dense HR grid DIINN's code selects with F.interpolate(mode="nearest-exact"). At integer
    # scales there are no ties and the two agree; at fractional ones a centre can sit on an LR cell edge
    # and the pixel after the edge is taken: floor((2i + 1) n / (2 N)) in exact integer arithmetic.
    net, feat = _index_probe(n, n)
    coord, cell = _queries(1, big_n, big_n)
    with torch.no_grad():
        picked = ((net.query(feat, coord, cell, mode="exact")[0, :, 0] - 0.5) * 2).round().view(big_n, big_n)
    i = torch.arange(big_n)
    axis = ((2 * i + 1) * n) // (2 * big_n)
    assert torch.equal(picked, (axis[:, None] * n + axis[None, :] + 1).float())
    if big_n % n == 0:
        dense = F.interpolate(feat[:, :1], size=(big_n, big_n), mode="nearest-exact")[0, 0]
        assert torch.equal(picked, dense)


def test_scale_input_option_is_one_over_s_or_one_over_s_squared():
    coord = torch.zeros(1, 2, 2)
    # Isotropic x4 and anisotropic (x4 rows, x2 columns) on a 4 x 5 grid.
    cell = torch.tensor([[[2 / 16, 2 / 20], [2 / 16, 2 / 10]]])
    code = synthesis_input(coord, cell, (4, 5), "inv_scale_sq")[0, :, 2]
    paper = synthesis_input(coord, cell, (4, 5), "inv_scale")[0, :, 2]
    assert torch.allclose(code, torch.tensor([1 / 16, 1 / 8]))
    assert torch.allclose(paper, torch.tensor([1 / 4, 1 / 8**0.5]))
    # Same weights, other option: outputs differ except at x1, where both channels are 1.
    a = DIINN(tiny_diinn_config()).eval()
    b = DIINN(tiny_diinn_config(scale_input="inv_scale")).eval()
    b.load_state_dict(a.state_dict())
    lr = torch.rand(1, 3, 6, 6)
    with torch.no_grad():
        feat = a.encode(lr)
        for size, same in (((6, 6), True), ((24, 24), False)):
            coord, cell = _queries(1, *size)
            diff = (a.query(feat, coord, cell, mode="exact") - b.query(feat, coord, cell, mode="exact")).abs().max()
            assert (diff == 0) == same, size


def test_published_decoder_size_with_edsr_baseline():
    net = DIINN()  # EDSR-baseline, widths [256] * 4, unfolded 576-channel codes
    c, n = 64, 256
    z = 9 * c
    encoder = (3 * 9 * c + c) + 16 * 2 * (c * 9 * c + c) + (c * 9 * c + c)  # head, 16 res blocks, body conv
    modulation = (z * n + n) + 3 * ((n + z) * n + n)
    synthesis = (3 * n + n) + 3 * (n * n + n)
    out = n * 3 + 3
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(net.encoder) == encoder == 1_220_416
    assert count(net.modulation) == modulation
    assert count(net.synthesis) == synthesis
    assert count(net) - count(net.encoder) == modulation + synthesis + out == 986_627
    assert [layer.in_features for layer in net.modulation] == [576, 832, 832, 832]
