"""Enhancement recipe (anyres.train.recipes.enhance) and the U-Net baseline (anyres.enhancement.unet):
config loading, exact resume, per-iteration batches, learning, the CLI dispatch and the shipped configs."""

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner

from anyres.cli import main
from anyres.enhancement.unet import DEEPLPF_PARAMETERS, UNetEnhancer, parameter_count
from anyres.errors import ConfigError, RegistryError
from anyres.hub import load_network, save_network
from anyres.io import write_image
from anyres.registry import NETWORKS
from anyres.train.config import load_config
from anyres.train.engine import CHECKPOINT, build
from anyres.train.recipes.enhance import EnhanceDataConfig, EnhanceOptimConfig, EnhanceTrainConfig

pytestmark = pytest.mark.usefixtures("one_thread")

CONFIGS = Path(__file__).resolve().parents[3] / "configs"
TINY_DEEPLPF = {"name": "deeplpf", "args": {"width": 2, "features": 4, "head_size": 8, "head_dropout": 0.5}}
TINY_UNET = {"name": "unet-enhancer", "args": {"width": 4, "levels": 2}}


def _images(n=3, size=32):
    g = torch.Generator().manual_seed(1)
    base = torch.rand(n, 3, size // 8, size // 8, generator=g)
    imgs = torch.nn.functional.interpolate(base, size=(size, size), mode="bilinear", align_corners=False)
    return [torch.round(x * 255).to(torch.uint8) for x in imgs]


def _config(tmp_path, **kw):
    cfg = EnhanceTrainConfig(
        name="tiny",
        model=kw.pop("model", TINY_DEEPLPF),
        data=EnhanceDataConfig(task=kw.pop("task", "retouch"), patch=16),
        batch_size=2,
        iterations=kw.pop("iterations", 6),
        optim=kw.pop("optim", EnhanceOptimConfig(lr=1e-3, milestones=[3])),
        checkpoint_minutes=1e9,
        log_every=1000,
        out_dir=str(tmp_path / "run"),
    )
    for k, v in kw.items():
        setattr(cfg, k, v)
    return cfg


def _quiet(msg):
    pass


def _state(trainer):
    return {k: v.clone() for k, v in trainer.state_tensors().items()}


# ---------------------------------------------------------------------------------------------------------
# Trainer


def test_resume_equals_an_uninterrupted_run_exactly(tmp_path):
    # The tiny DeepLPF keeps head dropout at 0.5, so this also checks that dropout masks are replayed.
    images = _images()
    full = build(_config(tmp_path / "a"), images=images, log=_quiet)
    full.run()
    first = build(_config(tmp_path / "b"), images=images, log=_quiet)
    first.run(stop_after=4)  # past the lr milestone at 3
    first.save_checkpoint()
    resumed = build(_config(tmp_path / "b"), images=images, log=_quiet)
    resumed.load_checkpoint(tmp_path / "b" / "run" / CHECKPOINT)
    assert resumed.iteration == 4
    resumed.run()
    a, b = _state(full), _state(resumed)
    assert set(a) == set(b) and any(k.startswith("optim.") for k in a)
    assert all(torch.equal(a[k], b[k]) for k in a)  # weights and Adam moments, bit for bit
    # Training did change the weights, so the equality above is not trivial.
    fresh = build(_config(tmp_path / "c"), images=images, log=_quiet).recipe.net.state_dict()
    assert any(not torch.equal(v, full.recipe.net.state_dict()[k]) for k, v in fresh.items())
    # The weights folder rebuilds the network alone, with its card.
    net, config = load_network(tmp_path / "b" / "run" / "model")
    assert config["arch"] == "deeplpf" and config["iterations"] == 6 and config["name"] == "tiny"
    assert config["training"]["task"] == {"name": "retouch", "args": {}}
    assert all(torch.equal(v, resumed.recipe.net.state_dict()[k]) for k, v in net.state_dict().items())
    assert "retouch" in (tmp_path / "b" / "run" / "model" / "README.md").read_text()


def test_batches_depend_only_on_seed_and_iteration_and_the_caller_rng_is_untouched(tmp_path):
    images = _images()
    one = build(_config(tmp_path / "a"), images=images, log=_quiet)
    two = build(_config(tmp_path / "b"), images=images, log=_quiet)
    d5, t5 = one.recipe.batch_at(5)
    assert d5.shape == t5.shape == (2, 3, 16, 16)
    assert all(torch.equal(x, y) for x, y in zip((d5, t5), two.recipe.batch_at(5)))
    assert not torch.equal(one.recipe.batch_at(4)[0], d5)
    other_seed = build(_config(tmp_path / "c", seed=1), images=images, log=_quiet)
    assert not torch.equal(other_seed.recipe.batch_at(5)[0], d5)
    before = torch.get_rng_state()
    one.step()
    assert torch.equal(torch.get_rng_state(), before)


@pytest.mark.parametrize("model,loss,task", [(TINY_UNET, "l1", "lowlight"), (TINY_DEEPLPF, "deeplpf", "lowlight")])
def test_tiny_training_lowers_the_loss(tmp_path, model, loss, task):
    cfg = _config(
        tmp_path, model=model, loss=loss, task=task, iterations=40, batch_size=4, optim=EnhanceOptimConfig(lr=3e-3)
    )
    t = build(cfg, images=_images(), log=_quiet)
    losses = [t.step()["loss"] for _ in range(40)]
    assert all(np.isfinite(losses))
    assert np.mean(losses[-10:]) < 0.8 * np.mean(losses[:10])


def test_stop_request_checkpoints_and_init_must_match(tmp_path):
    images = _images()
    t = build(_config(tmp_path), images=images, log=_quiet)
    original = t.step

    def step_then_stop():
        loss = original()
        if t.iteration == 2:
            t.stop_requested = True  # what SIGINT/SIGTERM do
        return loss

    t.step = step_then_stop
    t.run()
    assert t.iteration == 2 and (tmp_path / "run" / CHECKPOINT).is_file()
    # init: a matching folder loads, a mismatched one is a one-line config error.
    start = build(_config(tmp_path / "x", init=str(tmp_path / "run" / "model")), images=images, log=_quiet)
    assert all(torch.equal(v, t.recipe.net.state_dict()[k]) for k, v in start.recipe.net.state_dict().items())
    save_network(UNetEnhancer(width=2, levels=2), tmp_path / "unet")
    with pytest.raises(ConfigError, match="does not match"):
        build(_config(tmp_path / "y", init=str(tmp_path / "unet")), images=images, log=_quiet)


# ---------------------------------------------------------------------------------------------------------
# Config files


def _write(path, text):
    path.write_text(text)
    return path


def test_yaml_is_typed_and_unknown_keys_are_errors(tmp_path):
    base = "task: enhance\nmodel: {name: unet-enhancer, args: {width: 4}}\n"
    cfg = load_config(_write(tmp_path / "a.yaml", base + "optim: {lr: 2e-4}\ndata: {task: lowlight}\n"))
    assert cfg.optim.lr == 2e-4 and isinstance(cfg.optim.lr, float)  # PyYAML reads 2e-4 as a string
    assert cfg.data.task == {"name": "lowlight", "args": {}} and cfg.data.patch == 256 and cfg.loss == "deeplpf"
    over = load_config(
        tmp_path / "a.yaml", {"data.task": {"name": "retouch", "args": {"gamma": [1, 1]}}, "iterations": 7}
    )
    assert over.iterations == 7 and over.data.task["args"] == {"gamma": [1, 1]}
    bad = {
        "optimizer: {lr: 1}\n": r"b.yaml: optimizer: unknown key; valid keys here: batch_size, ",
        "data: {patchsize: 3}\n": "data.patchsize: unknown key; valid keys here: augment, patch, task, train$",
        "loss: mse\n": "loss: input should be 'deeplpf' or 'l1'",
        "data: {task: sharpen}\n": "sharpen",
        "data: {task: {name: retouch, args: {gama: [1, 1]}}}\n": "gama",
        "data: {patch: 4}\n": "patch",
        "batch_size: two\n": "batch_size",
        "data: {augment: 2}\n": "data.augment: input should be a valid boolean",
    }
    for extra, message in bad.items():
        with pytest.raises(ConfigError, match=message):
            load_config(_write(tmp_path / "b.yaml", base + extra))
    with pytest.raises(RegistryError, match="no-such-net"):
        load_config(_write(tmp_path / "c.yaml", "task: enhance\nmodel: {name: no-such-net}\n"))
    assert not isinstance(load_config(_write(tmp_path / "d.yaml", "name: x\n")), EnhanceTrainConfig)  # no task: SR


def test_shipped_configs_load_and_each_pair_differs_only_in_the_network():
    for task in ("retouch", "lowlight"):
        a = yaml.safe_load((CONFIGS / f"deeplpf-{task}.yaml").read_text())
        b = yaml.safe_load((CONFIGS / f"unet-{task}.yaml").read_text())
        assert {k for k in a.keys() | b.keys() if a.get(k) != b.get(k)} == {"name", "model", "out_dir"}
        for name in (f"deeplpf-{task}", f"unet-{task}"):
            cfg = load_config(CONFIGS / f"{name}.yaml")
            assert cfg.name == name and cfg.data.task["name"] == task and cfg.data.patch <= 256


def test_cli_train_dispatches_enhance_configs_and_resumes(tmp_path):
    data = tmp_path / "photos"
    for i, img in enumerate(_images()):
        write_image(data / f"p{i}.png", img.float()[None] / 255)
    run = tmp_path / "run"
    cfg = {
        "task": "enhance",
        "name": "cli-tiny",
        "model": TINY_UNET,
        "data": {"train": [str(data)], "task": "retouch", "patch": 16},
        "batch_size": 2,
        "iterations": 2,
        "loss": "l1",
        "log_every": 1,
        "out_dir": str(run),
    }
    path = _write(tmp_path / "tiny.yaml", yaml.safe_dump(cfg))
    res = CliRunner().invoke(main, ["train", str(path)])
    assert res.exit_code == 0, res.output
    assert "it 2/2" in res.stderr
    net, config = load_network(run / "model")
    assert type(net) is UNetEnhancer and config["iterations"] == 2
    assert yaml.safe_load((run / "config.yaml").read_text())["data"]["task"] == {"name": "retouch", "args": {}}
    res = CliRunner().invoke(main, ["train", str(path), "--set", "iterations=3"])
    assert res.exit_code == 0 and "resumed" in res.stderr and "it 3/3" in res.stderr
    assert load_network(run / "model")[1]["iterations"] == 3
    # User mistakes are one line on stderr.
    bad = CliRunner().invoke(main, ["train", str(path), "--set", "loss=mse"])
    assert bad.exit_code == 1 and bad.stderr.count("\n") == 1 and bad.stderr.startswith("anyres: error:")


# ---------------------------------------------------------------------------------------------------------
# The U-Net baseline


def test_unet_default_width_matches_deeplpf_parameter_count():
    net = NETWORKS.build("unet-enhancer")
    n = sum(p.numel() for p in net.parameters())
    assert n == parameter_count() == parameter_count(30, 4) == 1_692_633
    assert abs(n / DEEPLPF_PARAMETERS - 1) < 0.02
    assert sum(p.numel() for p in NETWORKS.build("deeplpf").parameters()) == DEEPLPF_PARAMETERS
    assert parameter_count(7, 3) == sum(p.numel() for p in UNetEnhancer(width=7, levels=3).parameters())


@pytest.mark.parametrize("size", [(1, 1), (5, 9), (16, 16), (23, 17)])
def test_unet_any_size_starts_as_identity_and_stays_in_range(size):
    net = UNetEnhancer(width=4, levels=3)
    x = torch.rand(2, 3, *size)
    assert torch.equal(net(x), x)
    with torch.no_grad():
        net.to_residual.weight.normal_(0, 1.0)
    y = net(x)
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1 and not torch.equal(y, x)
    with pytest.raises(ValueError, match=r"\(2, 1, 8, 8\)"):
        net(torch.rand(2, 1, 8, 8))


def test_unet_every_parameter_learns_and_saves_exactly(tmp_path):
    net = UNetEnhancer(width=4, levels=2)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    x, target = torch.rand(2, 3, 12, 12), torch.rand(2, 3, 12, 12) * 0.5 + 0.25
    for _ in range(2):  # the zero-initialised last layer moves first, the inner layers from the second step
        opt.zero_grad()
        (net(x) - target).abs().mean().backward()
        opt.step()
    assert all(not torch.equal(v, before[k]) for k, v in net.state_dict().items())
    save_network(net, tmp_path / "m", extra={"name": "u"})
    loaded, config = load_network(tmp_path / "m")
    assert config == {"arch": "unet-enhancer", "width": 4, "levels": 2, "name": "u"}
    with torch.no_grad():
        assert torch.equal(loaded(x), net(x))
