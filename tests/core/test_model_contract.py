"""The contract every arbitrary-scale network keeps (LIIF, DIINN, LIIFusion): output shape and dtype, finite
values, gradients reaching every parameter, save -> load equality, chunked == full queries, tiled == one
pass rendering, the upscaler's sizes, and training with the trainer. Architecture-specific facts live in
each network's own test module."""

import pytest
import torch

import anyres.enhancement  # noqa: F401  (registers the networks)
import anyres.sr  # noqa: F401
from anyres.hub import load_network, save_network
from anyres.ops.coords import make_cell, make_coord
from anyres.registry import NETWORKS
from anyres.sr.render import LIIFUpscaler, render

pytestmark = pytest.mark.usefixtures("one_thread")

# Generated from the registry: every upscaler network with its registered tiny example, plus LIIFusion's
# stage 2 (the same network with its diffusion prior).
ARCHS = {
    name: dict(NETWORKS[name].example)
    for name in NETWORKS.names(role="upscaler")
    if not getattr(NETWORKS[name].builder, "fixed_scale", False)  # RRDBNet: tests/sr/test_checkpoints_rrdbnet.py
}
ARCHS["liifusion-s2"] = {**ARCHS["liifusion"], "stage": 2, "denoise_blocks": 1}


def _arch(name):
    return name.removesuffix("-s2")


def _net(name):
    return NETWORKS.build(_arch(name), **ARCHS[name])


def _random_queries(b, q, scale=3.0, lr_size=(9, 11)):
    coord = torch.rand(b, q, 2) * 2 - 1
    cell = torch.tensor([2.0 / (lr_size[0] * scale), 2.0 / (lr_size[1] * scale)]).expand(b, q, 2).contiguous()
    return coord, cell


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("mode,encoder_bf16", [("exact", False), ("fast", True)])
def test_forward_shape_finite_and_every_parameter_learns(arch, mode, encoder_bf16, monkeypatch):
    monkeypatch.setenv("ANYRES_BF16", "1")  # the bf16 path, whether or not this CPU has native bf16
    net = _net(arch)
    lr = torch.rand(2, 3, 9, 11)
    coord, cell = _random_queries(2, 50)
    pred = net(lr, coord, cell, mode=mode, encoder_bf16=encoder_bf16)  # the trainer's call
    assert pred.shape == (2, 50, 3) and pred.dtype == torch.float32
    assert torch.isfinite(pred).all()
    pred.square().mean().backward()
    for name, p in net.named_parameters():
        if not p.requires_grad:  # stage 2's frozen stage-1 prior encoder
            continue
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("arch", ARCHS)
def test_save_load_round_trip_is_exact(arch, tmp_path):
    net = _net(arch).eval()
    save_network(net, tmp_path / "m", extra={"name": "tiny", "iterations": 3})
    loaded, config = load_network(tmp_path / "m")
    assert config["arch"] == _arch(arch) and config["name"] == "tiny"
    assert type(loaded) is type(net) and loaded.config == net.config
    for (k, a), (k2, b) in zip(net.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    lr = torch.rand(1, 3, 8, 8)
    assert torch.equal(render(net, lr, (20, 20), mode="exact"), render(loaded, lr, (20, 20), mode="exact"))
    assert (tmp_path / "m" / "model.safetensors").read_bytes()[8:9] == b"{"  # safetensors, not a pickle


@pytest.mark.parametrize("arch", ARCHS)
def test_float16_folder_loads_to_the_rounded_float32_network(arch, tmp_path):
    from safetensors import safe_open

    net = _net(arch).eval()
    save_network(net, tmp_path / "m", float16=True)
    with safe_open(str(tmp_path / "m" / "model.safetensors"), framework="pt") as f:
        assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"F16"}
    loaded, _ = load_network(tmp_path / "m")
    for k, v in net.state_dict().items():  # upcast on load: float32 values, float16 precision
        assert loaded.state_dict()[k].dtype == torch.float32 and torch.equal(
            loaded.state_dict()[k], v.half().float()
        ), k
    assert not all(torch.equal(v, v.half().float()) for v in net.state_dict().values())  # the rounding is real
    rounded = _net(arch).eval()
    rounded.load_state_dict({k: v.half().float() for k, v in net.state_dict().items()})
    lr = torch.rand(1, 3, 8, 8)
    assert torch.equal(render(loaded, lr, (20, 20), mode="exact"), render(rounded, lr, (20, 20), mode="exact"))
    save_network(net, tmp_path / "mixed", float16=True, keep_float32=("encoder.",))
    with safe_open(str(tmp_path / "mixed" / "model.safetensors"), framework="pt") as f:
        assert {k: f.get_slice(k).get_dtype() for k in f.keys()} == {
            k: "F32" if k.startswith("encoder.") else "F16" for k in net.state_dict()
        }
    mixed, _ = load_network(tmp_path / "mixed")
    for k, v in net.state_dict().items():
        assert torch.equal(mixed.state_dict()[k], v if k.startswith("encoder.") else v.half().float()), k


@pytest.mark.parametrize("arch", ARCHS)
def test_chunked_query_equals_full_query(arch):
    net = _net(arch).eval()
    lr = torch.rand(2, 3, 9, 11)
    coord, cell = _random_queries(2, 300)
    with torch.no_grad():
        feat = net.encode(lr)
        full = net.query(feat, coord, cell, mode="exact")
        chunks = torch.cat(
            [net.query(feat, coord[:, a : a + 37], cell[:, a : a + 37], mode="exact") for a in range(0, 300, 37)], dim=1
        )
    assert (chunks - full).abs().max() <= 1e-6


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("size", [(40, 29), (9, 13), (5, 4), (64, 17), (28, 21)])  # 28 x 21: ties at x1.5
def test_tiled_and_chunked_render_equals_one_pass_and_the_reference_query(arch, size):
    net = _net(arch).eval()
    lr = torch.rand(1, 3, 19, 14)
    full = render(net, lr, size, mode="exact", tile=None, chunk=10**9)
    tiled = render(net, lr, size, mode="exact", tile=5, chunk=37)
    chunked = render(net, lr, size, mode="exact", tile=None, chunk=50)
    assert (tiled - full).abs().max() <= 1e-5
    assert (chunked - full).abs().max() <= 1e-6
    # ... and the one-pass render equals the slow reference query over the whole grid.
    coord = make_coord(*size)[None]
    cell = make_cell(*size, size[0] * size[1])[None]
    with torch.no_grad():
        ref = net.query(net.encode(lr), coord, cell, mode="reference")
    assert (full[0].permute(1, 2, 0).reshape(-1, 3) - ref[0]).abs().max() <= 1e-5


@pytest.mark.parametrize("arch", ARCHS)
def test_gradients_of_the_exact_path_match_the_reference(arch):
    net = _net(arch).double()
    lr = torch.rand(1, 3, 6, 7, dtype=torch.float64)
    coord, cell = make_coord(10, 9)[None].double(), make_cell(10, 9, 90)[None].double()
    grads = []
    for mode in ("reference", "exact"):
        net.zero_grad()
        net(lr, coord, cell, mode=mode).square().sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in net.parameters() if p.grad is not None]))
    assert torch.allclose(grads[0], grads[1], atol=1e-10)


@pytest.mark.parametrize("arch", ARCHS)
def test_upscaler_sizes(arch):
    up = LIIFUpscaler(_net(arch).eval(), mode="fast", tile=4)
    lr = torch.rand(1, 3, 8, 8)
    assert up.upscale(lr, (31, 13)).shape == (1, 3, 31, 13)
    assert up.upscale(lr[:, :1], (5, 4)).shape == (1, 1, 5, 4)


@pytest.mark.parametrize("arch", ARCHS)
def test_trains_and_checkpoints_with_the_trainer(arch, tmp_path):
    from anyres.train.engine import build
    from anyres.train.recipes.sr import DataConfig, OptimConfig, TrainConfig

    g = torch.Generator().manual_seed(1)
    images = [torch.randint(0, 256, (3, 40, 40), generator=g, dtype=torch.uint8) for _ in range(2)]
    cfg = TrainConfig(
        model={"name": _arch(arch), "args": ARCHS[arch]},
        data=DataConfig(patch=8, scale_min=1.0, scale_max=3.0, queries=32),
        batch_size=2,
        iterations=2,
        optim=OptimConfig(lr=1e-3),
        checkpoint_minutes=1e9,
        log_every=1000,
        out_dir=str(tmp_path / "run"),
    )
    trainer = build(cfg, images=images, log=lambda msg: None)
    before = {k: v.clone() for k, v in trainer.recipe.net.named_parameters() if v.requires_grad}
    trainer.run()
    after = dict(trainer.recipe.net.named_parameters())
    unchanged = [k for k in before if torch.equal(before[k], after[k])]
    assert not unchanged, unchanged  # every parameter (a stage-1 prior encoder included) was trained
    loaded, _ = load_network(tmp_path / "run" / "model")
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in trainer.recipe.net.state_dict().items())
