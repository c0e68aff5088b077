"""The contract of every registered network, generated from the registry: each entry carries a tiny example
config, builds from it, maps its role's input to the right shape with finite values, sends a gradient to
every trainable parameter, and (when it can be saved alone) survives save -> load exactly.

Role-specific depth lives in test_model_contract.py (arbitrary-scale upscalers) and each network's own module.
"""

import pytest
import torch

import anyres.enhancement  # noqa: F401  (registers the networks)
import anyres.sr  # noqa: F401
from anyres.hub import load_network, save_network
from anyres.ops.coords import make_cell, make_coord
from anyres.registry import NETWORKS

pytestmark = pytest.mark.usefixtures("one_thread")

NAMES = NETWORKS.names()


def _run(name, net, x):
    """Feed the role's input; return the output and its expected shape."""
    role = NETWORKS[name].role
    if role == "upscaler" and getattr(net, "fixed_scale", False):
        return net(x), (2, 3, 12 * net.scale, 10 * net.scale)
    if role == "upscaler":
        coord, cell = make_coord(7, 5)[None].expand(2, -1, -1), make_cell(7, 5, 35)[None].expand(2, -1, -1)
        return net(x, coord, cell, mode="exact"), (2, 35, 3)
    if role == "enhancer":
        return net(x), tuple(x.shape)
    if role == "resampler":
        return net(x, (5, 6)), (2, 3, 5, 6)
    assert role == "", f"{name}: a role this contract does not know: {role!r}"
    out = net(x)
    return out, (2, net.out_dim, *x.shape[-2:])


def test_the_registry_holds_every_kind_of_network():
    roles = {NETWORKS[n].role for n in NAMES}
    assert {"upscaler", "enhancer", "resampler", ""} <= roles and len(NAMES) >= 8


@pytest.mark.parametrize("name", NAMES)
def test_every_network_has_a_tiny_example(name):
    assert isinstance(NETWORKS[name].example, dict), f"register {name!r} with example={{...}} (a tiny config)"


@pytest.mark.parametrize("name", NAMES)
def test_forward_shape_finite_and_every_parameter_learns(name):
    net = NETWORKS.build(name, **NETWORKS[name].example)
    x = torch.rand(2, 3, 12, 10)
    out, shape = _run(name, net, x)
    assert tuple(out.shape) == shape and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    trainable = [(n, p) for n, p in net.named_parameters() if p.requires_grad]
    assert trainable
    for n, p in trainable:
        assert p.grad is not None and torch.isfinite(p.grad).all(), n
    assert any(p.grad.abs().sum() > 0 for _, p in trainable)


@pytest.mark.parametrize("name", [n for n in NAMES if hasattr(NETWORKS[n].builder, "config_class")])
def test_save_load_round_trip_is_exact(name, tmp_path):
    net = NETWORKS.build(name, **NETWORKS[name].example).eval()
    save_network(net, tmp_path / name)
    loaded, config = load_network(tmp_path / name)
    assert config["arch"] == name and type(loaded) is type(net)
    assert net.state_dict().keys() == loaded.state_dict().keys()
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in net.state_dict().items())
    x = torch.rand(2, 3, 12, 10)
    with torch.no_grad():
        assert torch.equal(_run(name, net, x)[0], _run(name, loaded, x)[0])
