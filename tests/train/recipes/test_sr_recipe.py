"""SR recipe (anyres.train.recipes.sr): the sampler, learning, milestones and warm-up, exact resume, DDP replicas,
init weights and the stop request."""

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from anyres.errors import ConfigError
from anyres.train.config import load_config
from anyres.train.engine import CHECKPOINT, build
from anyres.train.recipes.sr import DataConfig, OptimConfig, TrainConfig
from conftest import tiny_liif_config


def _images(n=4, size=40):
    g = torch.Generator().manual_seed(1)
    # Smooth random images: low-resolution noise upsampled, so there is something to learn.
    base = torch.rand(n, 3, size // 8, size // 8, generator=g)
    imgs = torch.nn.functional.interpolate(base, size=(size, size), mode="bilinear", align_corners=False)
    return [torch.round(x * 255).to(torch.uint8) for x in imgs]


def _config(tmp_path, **kw):
    cfg = TrainConfig(
        model={"name": "liif", "args": tiny_liif_config()},
        data=DataConfig(patch=8, scale_min=1.0, scale_max=3.0, queries=32),
        batch_size=4,
        iterations=kw.pop("iterations", 6),
        optim=OptimConfig(lr=1e-3, milestones=[3]),
        checkpoint_minutes=1e9,
        log_every=1000,
        out_dir=str(tmp_path / "run"),
    )
    for k, v in kw.items():
        setattr(cfg, k, v)
    return cfg


def _weights(trainer):
    return {k: v.clone() for k, v in trainer.recipe.net.state_dict().items()}


def test_sampler_shapes_scales_and_values():
    from anyres.sr.data import RandomScaleSampler

    s = RandomScaleSampler(_images(), patch=8, scale_min=2, scale_max=4, queries=20)
    b = s.sample(6, torch.Generator().manual_seed(0))
    assert b.lr.shape == (6, 3, 8, 8) and b.coord.shape == (6, 20, 2) and b.gt.shape == (6, 20, 3)
    assert torch.all((b.scale >= 2 - 1 / 16) & (b.scale <= 4 + 1 / 16))
    side = torch.round(b.scale * 8)
    assert torch.allclose(b.cell[:, 0, 0], 2 / side)
    assert torch.equal(b.lr * 255, torch.round(b.lr * 255))  # 8-bit LR like the evaluation protocol
    assert b.coord.abs().max() < 1
    # Same generator seed, same batch; a different seed, a different batch.
    again = s.sample(6, torch.Generator().manual_seed(0))
    assert torch.equal(b.lr, again.lr) and torch.equal(b.gt, again.gt)
    assert not torch.equal(b.lr, s.sample(6, torch.Generator().manual_seed(1)).lr)


def test_tiny_training_lowers_the_loss(tmp_path):
    cfg = _config(tmp_path, iterations=60, optim=OptimConfig(lr=2e-3))
    t = build(cfg, images=_images(), log=lambda m: None)
    losses = [t.step()["loss"] for _ in range(60)]
    assert sum(losses[-10:]) / 10 < 0.7 * sum(losses[:10]) / 10


def test_learning_rate_follows_milestones(tmp_path):
    t = build(_config(tmp_path, optim=OptimConfig(lr=1.0, milestones=[2, 5], gamma=0.1)), images=_images())
    assert [t.recipe.lr_at(i) for i in (0, 1, 2, 4, 5)] == pytest.approx([1.0, 1.0, 0.1, 0.1, 0.01])
    # a cooldown [4, 8] ramps the scheduled rate linearly to 0 at 8, on top of the milestones
    t = build(
        _config(tmp_path, optim=OptimConfig(lr=1.0, milestones=[2], gamma=0.1, cooldown=[4, 8])), images=_images()
    )
    assert [t.recipe.lr_at(i) for i in (1, 3, 4, 5, 6, 8, 9)] == pytest.approx([1.0, 0.1, 0.1, 0.075, 0.05, 0.0, 0.0])
    with pytest.raises(ConfigError, match="cooldown must be"):
        OptimConfig(cooldown=[8, 4])


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_resume_gives_the_same_weights(tmp_path, precision, monkeypatch):
    monkeypatch.setenv("ANYRES_BF16", "1")  # bf16 is bf16 here, whether or not this CPU has native bf16
    images = _images()
    full = build(_config(tmp_path / "a", precision=precision), images=images, log=lambda m: None)
    full.run()
    first = build(_config(tmp_path / "b", precision=precision), images=images, log=lambda m: None)
    first.run(stop_after=4)  # past the lr milestone at 3
    first.save_checkpoint()
    resumed = build(_config(tmp_path / "b", precision=precision), images=images, log=lambda m: None)
    resumed.load_checkpoint(tmp_path / "b" / "run" / CHECKPOINT)
    assert resumed.iteration == 4
    resumed.run()
    a, b = _weights(full), _weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    # The exported model folder rebuilds the network alone.
    from anyres.hub import load_network

    net, config = load_network(tmp_path / "b" / "run" / "model")
    assert config["iterations"] == 6
    assert all(torch.equal(v, b[k]) for k, v in net.state_dict().items())


def _ddp_worker(rank, world, port, tmp, images):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world))
    from pathlib import Path

    import torch.distributed as dist
    from safetensors.torch import save_file

    t = build(_config(Path(tmp), iterations=3), images=images, log=lambda m: None)
    t.run()
    weights = {k: v.contiguous() for k, v in t.recipe.net.state_dict().items()}
    save_file(weights, os.path.join(tmp, f"rank{rank}.safetensors"))
    dist.destroy_process_group()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ddp_two_processes_keep_replicas_equal(tmp_path):
    from safetensors.torch import load_file

    images = _images()
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path), images), nprocs=2, join=True)
    w0, w1 = load_file(tmp_path / "rank0.safetensors"), load_file(tmp_path / "rank1.safetensors")
    init = build(_config(tmp_path / "x"), images=images).recipe.net.state_dict()
    assert all(torch.equal(w0[k], w1[k]) for k in w0)
    assert any(not torch.equal(w0[k], init[k]) for k in w0)  # they did train


def test_config_rejects_unknown_keys_and_coerces_numbers(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("optim: {lr: 2e-4}\nbatch_size: 8\n")
    cfg = load_config(p)
    assert cfg.optim.lr == 2e-4 and isinstance(cfg.optim.lr, float)
    p.write_text("optimizer: {lr: 1}\n")
    with pytest.raises(ConfigError, match="optimizer: unknown key"):
        load_config(p)


def test_stop_request_checkpoints_and_resume_continues(tmp_path):
    images = _images()
    t = build(_config(tmp_path), images=images, log=lambda m: None)
    original_step = t.step

    def step_then_stop():
        loss = original_step()
        if t.iteration == 2:
            t.stop_requested = True  # what SIGINT/SIGTERM do
        return loss

    t.step = step_then_stop
    t.run()
    assert t.iteration == 2
    resumed = build(_config(tmp_path), images=images, log=lambda m: None)
    resumed.load_checkpoint(tmp_path / "run" / CHECKPOINT)
    assert resumed.iteration == 2
    resumed.run()
    full = build(_config(tmp_path / "full"), images=images, log=lambda m: None)
    full.run()
    assert all(torch.equal(v, resumed.recipe.net.state_dict()[k]) for k, v in full.recipe.net.state_dict().items())


def test_degraded_sampler_makes_pipeline_lr_replayable_per_sample():
    from anyres.degrade import get_pipeline
    from anyres.sr.data import RandomScaleSampler

    imgs = _images(n=3, size=48)
    clean = RandomScaleSampler(imgs, patch=8, scale_min=2, scale_max=4, queries=16)
    blind = RandomScaleSampler(imgs, patch=8, scale_min=2, scale_max=4, queries=16, degradation="realesrgan")
    b = blind.sample(4, torch.Generator().manual_seed(3))
    c = clean.sample(4, torch.Generator().manual_seed(3))
    assert b.lr.shape == (4, 3, 8, 8) and torch.equal(b.lr * 255, torch.round(b.lr * 255))
    assert not torch.equal(b.lr, c.lr)
    # The crop, scale and queries come first from the generator, so the targets are those of the clean run.
    assert torch.equal(b.scale, c.scale) and torch.equal(b.coord, c.coord) and torch.equal(b.gt, c.gt)
    again = blind.sample(4, torch.Generator().manual_seed(3))
    assert torch.equal(b.lr, again.lr)
    # A {name, args} spec reaches the pipeline's config; bad specs are one-line config errors.
    s = RandomScaleSampler(imgs, patch=8, degradation={"name": "classical", "args": {"jpeg_prob": 1.0}})
    assert s.degradation.config == get_pipeline("classical", jpeg_prob=1.0).config
    with pytest.raises(ConfigError, match="degradation"):
        RandomScaleSampler(imgs, patch=8, degradation={"pipeline": "bsrgan"})
    with pytest.raises(Exception, match="unknown degradation pipeline"):
        RandomScaleSampler(imgs, patch=8, degradation="gaussian")


def test_degradation_prob_keeps_a_fraction_of_samples_clean():
    from anyres.sr.data import RandomScaleSampler

    imgs = _images(n=3, size=48)
    kw = dict(patch=8, scale_min=2, scale_max=4, queries=16)
    clean = RandomScaleSampler(imgs, **kw).sample(16, torch.Generator().manual_seed(3))
    full = RandomScaleSampler(imgs, **kw, degradation="classical").sample(16, torch.Generator().manual_seed(3))
    same = RandomScaleSampler(imgs, **kw, degradation={"name": "classical", "prob": 1.0}).sample(
        16, torch.Generator().manual_seed(3)
    )
    assert torch.equal(full.lr, same.lr)  # prob 1 draws no coin: the stream of earlier runs
    none = RandomScaleSampler(imgs, **kw, degradation={"name": "classical", "prob": 0.0}).sample(
        16, torch.Generator().manual_seed(3)
    )
    assert torch.equal(none.lr, clean.lr)
    half = RandomScaleSampler(imgs, **kw, degradation={"name": "classical", "prob": 0.5}).sample(
        16, torch.Generator().manual_seed(3)
    )
    is_clean = [torch.equal(half.lr[i], clean.lr[i]) for i in range(16)]
    assert 2 <= sum(is_clean) <= 14 and torch.equal(half.gt, clean.gt)
    with pytest.raises(ConfigError, match="prob"):
        RandomScaleSampler(imgs, **kw, degradation={"name": "classical", "prob": 1.5})


def test_warmup_ramps_the_learning_rate_linearly(tmp_path):
    cfg = _config(tmp_path, optim=OptimConfig(lr=1e-3, milestones=[8], warmup=4))
    t = build(cfg, images=_images(), log=lambda m: None)
    assert [t.recipe.lr_at(i) for i in (0, 1, 3, 4, 7, 8)] == pytest.approx([2.5e-4, 5e-4, 1e-3, 1e-3, 1e-3, 5e-4])


def test_init_loads_weights_and_refuses_mismatched_ones(tmp_path):
    from anyres.hub import save_network

    donor = build(_config(tmp_path, seed=5), images=_images(), log=lambda m: None)
    save_network(donor.recipe.net, tmp_path / "donor")
    fresh = build(_config(tmp_path, seed=6), images=_images(), log=lambda m: None)
    assert not all(torch.equal(a, b) for a, b in zip(_weights(donor).values(), _weights(fresh).values()))
    init = build(_config(tmp_path, seed=6, init=str(tmp_path / "donor")), images=_images(), log=lambda m: None)
    for k, v in _weights(donor).items():
        assert torch.equal(v, init.recipe.net.state_dict()[k]), k
    with pytest.raises(ConfigError, match="not found"):
        build(_config(tmp_path, init=str(tmp_path / "nowhere")), images=_images(), log=lambda m: None)
    other = _config(tmp_path, init=str(tmp_path / "donor"))
    other.model = {"name": "liif", "args": {**tiny_liif_config(), "hidden": [8]}}
    with pytest.raises(ConfigError, match="does not match"):
        build(other, images=_images(), log=lambda m: None)


def test_ema_update_is_the_moving_average():
    from anyres.train.engine import ema_update

    avg, net = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    before = {k: v.clone() for k, v in avg.state_dict().items()}
    ema_update(avg, net, 0.9)
    for k, v in avg.state_dict().items():
        assert torch.allclose(v, 0.9 * before[k] + 0.1 * net.state_dict()[k], atol=1e-7)


def test_ema_tracks_the_weights_resumes_exactly_and_exports_both(tmp_path):
    from anyres.hub import load_network

    images = _images()
    # The average the recipe keeps equals one recomputed from the weights after every step.
    t = build(_config(tmp_path / "a", ema=0.5), images=images, log=lambda m: None)
    ref = {k: v.clone() for k, v in t.recipe.net.state_dict().items()}
    for _ in range(6):
        t.step()
        for k, v in t.recipe.net.state_dict().items():
            ref[k] = 0.5 * ref[k] + 0.5 * v
    avg = t.recipe.ema_net.state_dict()
    assert all(torch.allclose(avg[k], ref[k], atol=1e-6) for k in ref)
    assert any(not torch.allclose(avg[k], v) for k, v in t.recipe.net.state_dict().items())
    # Straight through vs stopped at 4 and resumed: the same average.
    full = build(_config(tmp_path / "b", ema=0.5), images=images, log=lambda m: None)
    full.run()
    part = build(_config(tmp_path / "c", ema=0.5), images=images, log=lambda m: None)
    part.run(stop_after=4)
    part.save_checkpoint()
    resumed = build(_config(tmp_path / "c", ema=0.5), images=images, log=lambda m: None)
    resumed.load_checkpoint(tmp_path / "c" / "run" / CHECKPOINT)
    resumed.run()
    a, b = full.recipe.ema_net.state_dict(), resumed.recipe.ema_net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # model/ holds the average, model-raw/ the trained weights.
    run = tmp_path / "c" / "run"
    shipped, cfg = load_network(run / "model")
    raw, _ = load_network(run / "model-raw")
    assert cfg["ema"] == 0.5
    assert all(torch.equal(v, b[k]) for k, v in shipped.state_dict().items())
    net = resumed.recipe.net.state_dict()
    assert all(torch.equal(v, net[k]) for k, v in raw.state_dict().items())


def test_ema_switched_on_when_resuming_starts_from_the_resumed_weights(tmp_path):
    images = _images()
    plain = build(_config(tmp_path), images=images, log=lambda m: None)
    plain.run(stop_after=3)
    plain.save_checkpoint()
    resumed = build(_config(tmp_path, ema=0.9), images=images, log=lambda m: None)
    resumed.load_checkpoint(tmp_path / "run" / CHECKPOINT)
    net, avg = resumed.recipe.net.state_dict(), resumed.recipe.ema_net.state_dict()
    assert all(torch.equal(avg[k], v) for k, v in net.items())
    # Without an average to fill, a checkpoint that lacks a module is refused.
    patches = DataConfig(patch=8, scale_min=1.0, scale_max=3.0, queries=16, query_layout="patch")
    gan = build(_config(tmp_path, data=patches, gan_weight=0.1), images=images)
    with pytest.raises(ConfigError, match="no weights for 'disc'"):
        gan.load_checkpoint(tmp_path / "run" / CHECKPOINT)


def test_validation_scores_the_average_and_the_trained_weights(tmp_path):
    from anyres.evaluation import evaluate
    from anyres.io.writing import write_image
    from anyres.sr.render import LIIFUpscaler
    from anyres.train.recipes.sr import ValConfig

    val = tmp_path / "val"
    val.mkdir()
    for i, img in enumerate(_images(2, 48)):
        write_image(val / f"{i}.png", img.float() / 255)
    t = build(_config(tmp_path, ema=0.5, val=ValConfig(data=str(val), scales=[2], every=3)), images=_images())
    t.run(stop_after=3)
    entry = t.history[-1]
    assert entry["iteration"] == 3 and set(entry) == {"iteration", "psnr", "psnr_raw", "elapsed"}
    assert 0 < entry["elapsed"] == round(t.elapsed, 3)  # its clock: the seconds of steps up to it

    def psnr(net):
        return round(evaluate(LIIFUpscaler(net, mode="fast"), str(val), [2], progress=False)["results"][0]["psnr"], 3)

    assert entry["psnr"] == {"x2": psnr(t.recipe.ema_net)} and entry["psnr_raw"] == {"x2": psnr(t.recipe.net)}
    assert entry["psnr"] != entry["psnr_raw"]


def test_bf16_run_falls_back_to_float32_where_bf16_is_not_native(tmp_path, monkeypatch):
    images = _images()
    fp32 = build(_config(tmp_path / "a", precision="fp32"), images=images, log=lambda m: None)
    fp32.run()
    monkeypatch.setenv("ANYRES_BF16", "0")  # as on a CPU without bf16 instructions
    said = []
    fallback = build(_config(tmp_path / "b", precision="bf16"), images=images, log=said.append)
    assert not fallback.recipe.bf16
    assert any("no native bf16" in m and "float32" in m for m in said)
    fallback.run()
    a, b = _weights(fp32), _weights(fallback)
    assert all(torch.equal(a[k], b[k]) for k in a)  # the same run as precision fp32, bit for bit
