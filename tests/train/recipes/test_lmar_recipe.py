"""LMAR resampler training (anyres.train.recipes.lmar): per-iteration batches, exact resume, a frozen enhancer, the
discriminator, the weights folder, config errors and the `anyres train` dispatch. Tiny networks and generated
photos only."""

from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner

from anyres.cli import main
from anyres.enhancement.api import load_resampler
from anyres.enhancement.lmar import LMAR
from anyres.enhancement.tasks import get_task
from anyres.enhancement.unet import UNetEnhancer
from anyres.errors import ConfigError
from anyres.hub import save_network
from anyres.io import write_image
from anyres.train.config import config_task, load_config
from anyres.train.engine import CHECKPOINT, build
from anyres.train.recipes.lmar import LMARDataConfig, LMARLossConfig, LMAROptimConfig, LMARTrainConfig, target_sides

pytestmark = pytest.mark.usefixtures("one_thread")

CONFIGS = Path(__file__).resolve().parents[3] / "configs"
TINY_LMAR = {"name": "lmar", "args": {"hidden": [8]}}


def _quiet(msg):
    pass


def _images(n=3, size=(48, 56)):
    g = torch.Generator().manual_seed(1)
    base = torch.rand(n, 3, size[0] // 8, size[1] // 8, generator=g)
    imgs = torch.nn.functional.interpolate(base, size=size, mode="bilinear", align_corners=False)
    return [torch.round(x * 255).to(torch.uint8) for x in imgs]


def _save_enhancer(folder, seed=0):
    torch.manual_seed(seed)
    net = UNetEnhancer(width=2, levels=2)
    with torch.no_grad():  # a non-identity enhancer, as a trained one would be
        net.to_residual.weight.normal_(0, 0.1)
    return save_network(net, folder)


@pytest.fixture(scope="module")
def enhancer(tmp_path_factory):
    return _save_enhancer(tmp_path_factory.mktemp("enhancer") / "model")


def _config(out, enhancer, **kw):
    cfg = LMARTrainConfig(
        name="tiny",
        enhancer=str(enhancer),
        model=TINY_LMAR,
        data=LMARDataConfig(crop=32, scale_max=2.0, augment=True),
        iterations=kw.pop("iterations", 6),
        optim=LMAROptimConfig(step_every=3),
        checkpoint_minutes=1e9,
        log_every=1000,
        out_dir=str(out / "run"),
    )
    for k, v in kw.items():
        setattr(cfg, k, v)
    return cfg


def _state(trainer):
    return {k: v.clone() for k, v in trainer.state_tensors().items()}


# ---------------------------------------------------------------------------------------------------------
# Batches


def test_target_sides_are_the_reference_randrange():
    assert target_sides(1024, 1.0, 4.0, 8) == list(range(256, 1024, 8))  # randrange(256, 1024, 8)
    assert target_sides(256, 1.0, 4.0, 8) == list(range(64, 256, 8))
    assert target_sides(32, 1.0, 2.0, 8) == [16, 24]
    assert target_sides(64, 2.0, 4.0, 8) == [16, 24]  # scale in (2, 4]: d < 32


def test_batches_are_damaged_crops_replayed_from_the_iteration(tmp_path, enhancer):
    trainer = build(_config(tmp_path, enhancer, batch_size=2), images=_images(), log=_quiet)
    draw_at = trainer.recipe.draw_at
    assert draw_at(5) == draw_at(5) and draw_at(5) != draw_at(6)
    drawn = trainer.recipe.draw_at(3)
    x, side = trainer.recipe.batch_at(3)
    assert x.shape == (2, 3, 32, 32) and side == drawn["side"] and side in (16, 24)
    lowlight = get_task("lowlight")
    for b, s in enumerate(drawn["samples"]):
        clean = trainer.recipe.images[s["image"]][:, s["top"] : s["top"] + 32, s["left"] : s["left"] + 32].float() / 255
        clean = clean.flip(-1) if s["hflip"] else clean
        clean = clean.flip(-2) if s["vflip"] else clean
        assert torch.equal(x[b : b + 1], lowlight.apply(clean[None].contiguous(), [s["record"]]))
        assert x[b].mean() < clean.mean()  # lowlight darkens
    sides = {trainer.recipe.draw_at(i)["side"] for i in range(40)}
    assert sides == {16, 24}
    clean_run = build(
        _config(tmp_path, enhancer, data=LMARDataConfig(crop=32, scale_max=2.0, task=None)),
        images=_images(),
        log=_quiet,
    )
    x, _ = clean_run.recipe.batch_at(0)
    s = clean_run.recipe.draw_at(0)["samples"][0]
    assert s["record"] is None
    image = clean_run.recipe.images[s["image"]]
    assert torch.equal(x[0], image[:, s["top"] : s["top"] + 32, s["left"] : s["left"] + 32] / 255)


# ---------------------------------------------------------------------------------------------------------
# Training


def test_resume_equals_an_uninterrupted_run_exactly(tmp_path, enhancer):
    images = _images()
    initial = _state(build(_config(tmp_path / "a", enhancer), images=images, log=_quiet))
    full = build(_config(tmp_path / "a", enhancer), images=images, log=_quiet)
    full.run()
    first = build(_config(tmp_path / "b", enhancer), images=images, log=_quiet)
    first.run(stop_after=4)  # past the lr step at 3
    first.save_checkpoint()
    resumed = build(_config(tmp_path / "b", enhancer), images=images, log=_quiet)
    resumed.load_checkpoint(tmp_path / "b" / "run" / CHECKPOINT)
    assert resumed.iteration == 4 and resumed.recipe.lr_at(4) == pytest.approx(4e-4 * 0.75)
    resumed.run()
    a, b = _state(full), _state(resumed)
    assert set(a) == set(b)
    assert {k.split(".")[0] for k in a} == {"lmar", "disc", "optim_g", "optim_d"}
    assert all(torch.equal(a[k], b[k]) for k in a)  # LMAR, D and both Adams, bit for bit
    assert any(not torch.equal(a[k], initial[k]) for k in initial)


def test_enhancer_stays_frozen_while_lmar_and_the_discriminator_learn(tmp_path, enhancer):
    from safetensors.torch import load_file

    trainer = build(_config(tmp_path, enhancer, iterations=3), images=_images(), log=_quiet)
    lmar0 = {k: v.clone() for k, v in trainer.recipe.net.state_dict().items()}
    disc0 = {k: v.clone() for k, v in trainer.recipe.disc.state_dict().items()}
    trainer.run()
    frozen = trainer.recipe.enhancer
    assert not frozen.training and not any(p.requires_grad for p in frozen.parameters())
    assert all(p.grad is None for p in trainer.recipe.enhancer.parameters())
    saved = load_file(str(Path(enhancer) / "model.safetensors"))
    assert all(torch.equal(saved[k], v) for k, v in trainer.recipe.enhancer.state_dict().items())
    # Every LMAR and every discriminator tensor moved.
    assert all(not torch.equal(lmar0[k], v) for k, v in trainer.recipe.net.state_dict().items())
    assert all(not torch.equal(disc0[k], v) for k, v in trainer.recipe.disc.state_dict().items())
    assert len(trainer.recipe.optim_d.state) == len(list(trainer.recipe.disc.parameters()))
    assert {"total", "consistency", "attention", "edge", "adversarial", "disc"} <= set(trainer.history[-1])


def test_the_feature_loss_goes_down_on_a_fixed_batch(tmp_path, enhancer):
    from anyres.train.lmar_losses import encoder_features, resampling_consistency_loss

    cfg = _config(tmp_path, enhancer, iterations=25, loss=LMARLossConfig(adversarial=0.0, attention=0.0, edge=0.0))
    cfg.optim = LMAROptimConfig(lr=2e-3, step_every=1000)
    trainer = build(cfg, images=_images(n=1, size=(32, 32)), log=_quiet)
    trainer.recipe.draw_at = lambda i, draw=trainer.recipe.draw_at: draw(0)  # the same batch every iteration
    hr, side = trainer.recipe.batch_at(0)
    encoder = encoder_features(trainer.recipe.enhancer)

    def loss():
        with torch.no_grad():
            return float(resampling_consistency_loss(encoder(trainer.recipe.net(hr, (side, side))), encoder(hr)))

    before = loss()
    trainer.run()
    assert loss() < 0.7 * before
    assert "disc" not in trainer.history[-1]  # adversarial weight 0: no discriminator step


def test_weights_folder_loads_as_a_resampler_with_its_card(tmp_path, enhancer):
    trainer = build(_config(tmp_path, enhancer, iterations=2), images=_images(), log=_quiet)
    trainer.run()
    folder = tmp_path / "run" / "model"
    net = load_resampler("lmar", folder)
    assert isinstance(net, LMAR) and not net.training
    x = torch.rand(1, 3, 40, 36)
    with torch.no_grad():
        assert torch.equal(net(x, (20, 18)), trainer.recipe.net.eval()(x, (20, 18)))
    import json

    config = json.loads((folder / "config.json").read_text())
    assert config["arch"] == "lmar" and config["iterations"] == 2
    assert config["training"]["enhancer"]["sha256"] == trainer.recipe.enhancer_info["sha256"]
    assert config["training"]["enhancer"]["folder"] == str(enhancer)
    card = (folder / "README.md").read_text()
    assert str(enhancer) in card and "Not measured by the trainer" in card and "5000 L_fa" in card


# ---------------------------------------------------------------------------------------------------------
# Config errors


def _write(path, text):
    path.write_text(text)
    return path


def _yaml(tmp_path, enhancer, **kw):
    cfg = {
        "task": "lmar",
        "name": "cli-tiny",
        "enhancer": str(enhancer),
        "model": TINY_LMAR,
        "data": {"train": [str(tmp_path / "photos")], "crop": 32, "scale_max": 2.0},
        "iterations": 2,
        "log_every": 1,
        "threads": 1,
        "out_dir": str(tmp_path / "run"),
    }
    cfg.update(kw)
    return _write(tmp_path / "tiny.yaml", yaml.safe_dump(cfg))


def test_config_errors_are_one_line(tmp_path, enhancer):
    path = _yaml(tmp_path, enhancer)
    assert load_config(path).data.task == {"name": "lowlight", "args": {}}
    cases = [
        ({"cropp": 3}, "cropp: unknown key"),
        (
            {"data.cropp": 3},
            r"data.cropp: unknown key; valid keys here: "
            "augment, crop, exclude",
        ),
        ({"enhancer": None}, "enhancer: .*is required"),
        ({"model.name": "liif"}, "model: expected"),
        ({"data.scale_max": 4.0}, "discriminator needs"),
        ({"loss.attention": -1}, "attention"),
        ({"optim.betas": [0.9]}, "betas"),
        ({"data.task": "denoise"}, "denoise"),
    ]
    for overrides, match in cases:
        with pytest.raises(ConfigError, match=match) as err:
            load_config(path, overrides)
        assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="not a weights folder") as err:
        build(load_config(path, {"enhancer": str(tmp_path / "missing")}), images=_images(), log=_quiet)
    assert "\n" not in str(err.value)
    for i, img in enumerate(_images()):
        write_image(tmp_path / "photos" / f"p{i}.png", img.float()[None] / 255)
    with pytest.raises(ConfigError, match="p9.png"):
        build(load_config(path, {"data.exclude": ["p9.png"]}), log=_quiet)
    held_out = build(load_config(path, {"data.exclude": ["p0.png"]}), log=_quiet)
    assert len(held_out.recipe.images) == 2


def test_resume_against_other_enhancer_weights_is_refused(tmp_path, enhancer):
    other = _save_enhancer(tmp_path / "other", seed=1)
    trainer = build(_config(tmp_path, other, iterations=1), images=_images(), log=_quiet)
    trainer.run()
    _save_enhancer(other, seed=2)  # the enhancer was retrained in place
    again = build(_config(tmp_path, other, iterations=1), images=_images(), log=_quiet)
    with pytest.raises(ConfigError, match="another enhancer"):
        again.load_checkpoint(tmp_path / "run" / CHECKPOINT)


# ---------------------------------------------------------------------------------------------------------
# Dispatch and the shipped config


def test_config_task_tells_the_three_kinds_apart(tmp_path):
    assert config_task(CONFIGS / "liif-edsr-baseline.yaml") is None
    assert config_task(CONFIGS / "unet-lowlight.yaml") == "enhance"
    assert config_task(CONFIGS / "lmar-lowlight.yaml") == "lmar"
    assert config_task(CONFIGS / "liif-edsr-baseline.yaml", {"task": "enhance"}) == "enhance"
    with pytest.raises(ConfigError, match="'lmar'"):
        config_task(_write(tmp_path / "x.yaml", "task: denoise\n"))
    with pytest.raises(ConfigError, match="cannot read"):
        config_task(tmp_path / "missing.yaml")


def test_cli_train_dispatches_lmar_configs_and_resumes(tmp_path, enhancer):
    for i, img in enumerate(_images()):
        write_image(tmp_path / "photos" / f"p{i}.png", img.float()[None] / 255)
    path = _yaml(tmp_path, enhancer)
    res = CliRunner().invoke(main, ["train", str(path)])
    assert res.exit_code == 0, res.output
    assert "it 2/2" in res.stderr and "3 of 3 photos hold a 32x32 crop" in res.stderr
    assert isinstance(load_resampler("lmar", tmp_path / "run" / "model"), LMAR)
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["enhancer"] == str(enhancer)
    res = CliRunner().invoke(main, ["train", str(path), "--set", "iterations=3"])
    assert res.exit_code == 0 and "resumed" in res.stderr and "it 3/3" in res.stderr
    for bad in (["--set", "data.cropp=3"], ["--set", f"enhancer={tmp_path / 'none'}"]):
        res = CliRunner().invoke(main, ["train", str(path), *bad])
        assert res.exit_code == 1 and res.stderr.count("\n") == 1 and res.stderr.startswith("anyres: error:")


def test_shipped_config_loads_and_keeps_the_reference_schedule():
    cfg = load_config(CONFIGS / "lmar-lowlight.yaml")
    assert cfg.enhancer == "checkpoints/unet-lowlight" and cfg.data.task == {"name": "lowlight", "args": {}}
    assert (cfg.optim.lr, cfg.optim.betas, cfg.optim.gamma) == (4e-4, [0.9, 0.999], 0.75)
    assert cfg.iterations == 3 * cfg.optim.step_every  # 12 epochs, a step every 4
    assert cfg.loss == LMARLossConfig() and cfg.batch_size == 1 and cfg.discriminator_channels == 4
    assert (
        target_sides(cfg.data.crop, cfg.data.scale_min, cfg.data.scale_max, cfg.data.size_step)[0] == cfg.data.crop // 4
    )
    # The enhancer named there is the committed model folder of configs/unet-lowlight.yaml's run.
    enhance = yaml.safe_load((CONFIGS / "unet-lowlight.yaml").read_text())
    assert cfg.enhancer == f"checkpoints/{enhance['name']}"
