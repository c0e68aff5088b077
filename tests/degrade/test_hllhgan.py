"""HLLHGAN: networks, losses, training (resume = uninterrupted), the learned pipeline and the CLI."""

import json

import click
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from anyres.cli.hllhgan import hllhgan_command
from anyres.degrade import get_pipeline
from anyres.degrade.learned.hllhgan import (
    H2LGenerator,
    L2HGenerator,
    ResDiscriminator,
    h2l_pixel_target,
    hinge_d_loss,
    hinge_g_loss,
    load_generator,
)
from anyres.errors import ConfigError
from anyres.train.recipes.hllhgan import HLLHGANConfig, random_crops, train_hllhgan

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = dict(h2l_channels=(4, 4, 8, 8), d_channels=(4, 4, 8, 8), batch=2, hr_size=32, checkpoint_minutes=60.0)


def _images(n, h, w, seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 256, (3, h + i, w + 2 * i), generator=g, dtype=torch.uint8) for i in range(n)]


# ------------------------------------------------------------------------------------------ networks


@pytest.mark.parametrize("noise", ["map", "fc"])
def test_h2l_shapes_and_noise(noise):
    net = H2LGenerator((4, 4, 8, 8), noise=noise, fc_size=64).eval()
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    n1 = net.make_noise(2, 64, 64, torch.Generator().manual_seed(0))
    n2 = net.make_noise(2, 64, 64, torch.Generator().manual_seed(1))
    assert n1.shape == ((2, 64) if noise == "fc" else (2, 1, 64, 64))
    with torch.no_grad():
        for t in net.tail.parameters():  # make the residual branch non-zero so that noise matters
            t.normal_(0, 0.1)
        a, b, a2 = net(x, n1), net(x, n2), net(x, n1)
    assert a.shape == (2, 3, 16, 16)
    assert torch.equal(a, a2) and not torch.allclose(a, b)
    with pytest.raises(ValueError, match="multiples of 16"):
        net(torch.zeros(1, 3, 40, 64))


def test_h2l_starts_at_the_pixel_target():
    # skip=True zero-initialises the last conv: the untrained generator outputs the 4x4 average pool.
    net = H2LGenerator((4, 4, 8, 8)).eval()
    x = torch.rand(1, 3, 48, 32) * 2 - 1
    with torch.no_grad():
        out = net(x, net.make_noise(1, 48, 32))
    torch.testing.assert_close(out, h2l_pixel_target(x))
    torch.testing.assert_close(h2l_pixel_target(x)[0, :, 0, 0], x[0, :, :4, :4].mean((-1, -2)))
    # the paper's variant ends in tanh: outputs stay inside (-1, 1)
    paper = H2LGenerator((4, 4, 8, 8), skip=False).eval()
    with torch.no_grad():
        assert paper(x * 50).abs().max() < 1


def test_discriminator_and_l2h_shapes():
    d16, d64 = ResDiscriminator(16, (4, 4, 8, 8)), ResDiscriminator(64, (4, 4, 8, 8))
    assert d16(torch.randn(3, 3, 16, 16)).shape == (3,)
    assert d64(torch.randn(2, 3, 64, 64)).shape == (2,)
    with pytest.raises(ValueError, match="16x16"):
        d16(torch.randn(1, 3, 32, 32))
    with pytest.raises(ConfigError):
        ResDiscriminator(24)
    with pytest.raises(ConfigError, match="at least 4 blocks"):
        ResDiscriminator(64, (4, 4, 4))
    g = L2HGenerator(width=8, width2=4, n_blocks=2)
    y = g(torch.rand(2, 3, 16, 12) * 2 - 1)
    assert y.shape == (2, 3, 64, 48) and y.abs().max() < 1


def test_discriminator_is_spectrally_normalised():
    d = ResDiscriminator(16, (4, 4, 8, 8)).train()
    for _ in range(30):  # power iterations run in training-mode forwards
        d(torch.randn(2, 3, 16, 16))
    w = d.fc1.weight  # the normalised weight
    assert torch.linalg.matrix_norm(w, ord=2).item() == pytest.approx(1.0, abs=0.02)


def test_hinge_losses_by_hand():
    real = torch.tensor([2.0, 0.5, -1.0])
    fake = torch.tensor([-2.0, 0.0, 1.0])
    # relu(1 - real) = [0, 0.5, 2] -> mean 0.8333; relu(1 + fake) = [0, 1, 2] -> mean 1
    assert hinge_d_loss(real, fake).item() == pytest.approx(2.5 / 3 + 1.0)
    assert hinge_g_loss(fake).item() == pytest.approx(1.0 / 3)


def test_random_crops_are_replayable_and_in_range():
    imgs = _images(3, 20, 24, 0)
    a = random_crops(imgs, 16, 5, torch.Generator().manual_seed(3))
    b = random_crops(imgs, 16, 5, torch.Generator().manual_seed(3))
    assert a.shape == (5, 3, 16, 16) and torch.equal(a, b) and 0 <= a.min() and a.max() <= 1
    with pytest.raises(ConfigError, match="no training image"):
        random_crops(imgs, 64, 1, torch.Generator())


# ------------------------------------------------------------------------------------------ training


def _tensors(folder):
    from safetensors.torch import load_file

    return load_file(str(folder / "checkpoint.safetensors"))


def test_training_learns_and_resume_equals_uninterrupted(tmp_path):
    hr, lr = _images(3, 40, 40, 1), _images(3, 12, 12, 2)
    cfg = HLLHGANConfig(**TINY, iterations=3)
    full = train_hllhgan(hr, lr, tmp_path / "a", cfg, progress=False, log=lambda m: None)
    train_hllhgan(hr, lr, tmp_path / "b", cfg, progress=False, log=lambda m: None, stop_after=2)
    resumed = train_hllhgan(hr, lr, tmp_path / "b", cfg, progress=False, log=lambda m: None)
    assert full["iterations"] == resumed["iterations"] == 3
    ta, tb = _tensors(tmp_path / "a"), _tensors(tmp_path / "b")
    assert ta.keys() == tb.keys()
    for k in ta:
        torch.testing.assert_close(ta[k], tb[k], rtol=0, atol=0, msg=k)
    # the H2L weights moved away from their initial values and the saved folder loads
    init = H2LGenerator(cfg.h2l_channels, cfg.noise, skip=cfg.skip, fc_size=cfg.hr_size)
    torch.manual_seed(cfg.seed)
    net = load_generator(tmp_path / "a" / "h2l")
    assert not torch.equal(net.tail.weight, init.tail.weight)
    # a checkpoint made with other settings is refused
    with pytest.raises(ConfigError, match="other settings"):
        train_hllhgan(hr, lr, tmp_path / "a", HLLHGANConfig(**{**TINY, "batch": 3}, iterations=4), progress=False)


def test_training_with_l2h(tmp_path):
    hr, lr = _images(2, 40, 40, 1), _images(2, 12, 12, 2)
    cfg = HLLHGANConfig(**TINY, iterations=1, l2h=True, l2h_width=8, l2h_width2=4)
    out = train_hllhgan(hr, lr, tmp_path, cfg, progress=False)
    assert {"d_high", "l2h_pixel", "l2h_gan"} <= set(out["losses"])
    assert all(np.isfinite(v) for v in out["losses"].values())
    assert (tmp_path / "l2h" / "model.safetensors").is_file()


@pytest.mark.parametrize("bad", [dict(hr_size=40), dict(batch=0), dict(lr=0.0)])
def test_config_errors(bad):
    with pytest.raises(ConfigError):
        HLLHGANConfig(**bad)


# ------------------------------------------------------------------------------------------ pipeline


@pytest.fixture(scope="module")
def h2l_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gan")
    cfg = HLLHGANConfig(**TINY, iterations=1)
    train_hllhgan(_images(2, 40, 40, 1), _images(2, 12, 12, 2), folder, cfg, progress=False)
    with torch.no_grad():  # a non-trivial residual branch, so that the noise seed matters
        net = load_generator(folder / "h2l")
        net.tail.weight.normal_(0, 0.2)
    from anyres.hub import save_network

    save_network(net, folder / "h2l")
    return folder / "h2l"


def test_pipeline_replays_and_pads_odd_sizes(h2l_folder):
    pipe = get_pipeline("hllhgan", weights=str(h2l_folder))
    hr = torch.rand(2, 3, 50, 37)
    records = pipe.sample(2, torch.Generator().manual_seed(0), scale=4, hr_size=[50, 37])
    assert json.loads(json.dumps(records)) == records and records[0]["seed"] != records[1]["seed"]
    lr = pipe.apply(hr, records)
    assert lr.shape == (2, 3, 13, 9) and 0 <= lr.min() and lr.max() <= 1  # round(50/4)=13 (half up), round(37/4)=9
    assert torch.equal(lr, pipe.apply(hr, json.loads(json.dumps(records))))
    assert torch.equal(lr[1:], pipe.apply(hr[1:], records[1:]))
    other = pipe.sample(2, torch.Generator().manual_seed(1), scale=4, hr_size=[50, 37])
    assert not torch.equal(lr, pipe.apply(hr, other))
    # an exact multiple of 16 is not padded: the result equals the network on [-1, 1]
    x = torch.rand(1, 3, 32, 48)
    rec = pipe.sample(1, torch.Generator().manual_seed(2), scale=4, hr_size=[32, 48])
    net = load_generator(h2l_folder)
    with torch.no_grad():
        direct = net(x * 2 - 1, net.make_noise(1, 32, 48, torch.Generator().manual_seed(rec[0]["seed"])))
    torch.testing.assert_close(pipe.apply(x, rec), ((direct + 1) / 2).clamp(0, 1))


def test_pipeline_errors(h2l_folder, tmp_path):
    with pytest.raises(ConfigError, match="needs weights"):
        get_pipeline("hllhgan")
    pipe = get_pipeline("hllhgan", weights=str(h2l_folder))
    with pytest.raises(ConfigError, match="x4 only"):
        pipe.sample(1, torch.Generator(), scale=2, hr_size=[32, 32])
    missing = get_pipeline("hllhgan", weights=str(tmp_path / "nothing"))
    with pytest.raises(ConfigError, match="not an HLLHGAN h2l weights folder"):
        missing.apply(torch.rand(1, 3, 32, 32), missing.sample(1, torch.Generator(), scale=4, hr_size=[32, 32]))


def test_sampler_uses_the_learned_pipeline(h2l_folder):
    from anyres.sr.data import RandomScaleSampler

    imgs = _images(2, 100, 100, 4)
    deg = {"name": "hllhgan", "args": {"weights": str(h2l_folder)}}
    s = RandomScaleSampler(imgs, patch=12, scale_min=4, scale_max=4, queries=16, degradation=deg)
    clean = RandomScaleSampler(imgs, patch=12, scale_min=4, scale_max=4, queries=16)
    a = s.sample(2, torch.Generator().manual_seed(5))
    b = s.sample(2, torch.Generator().manual_seed(5))
    c = clean.sample(2, torch.Generator().manual_seed(5))
    assert a.lr.shape == (2, 3, 12, 12) and torch.equal(a.lr, b.lr)
    assert torch.equal(a.gt, c.gt) and not torch.allclose(a.lr, c.lr)  # same crops, other LR


# ------------------------------------------------------------------------------------------ CLI


def _png(path, size, seed):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)


def test_cli_trains_and_degrade_uses_the_weights(tmp_path):
    (tmp_path / "hr").mkdir(), (tmp_path / "lr").mkdir()
    for i in range(2):
        _png(tmp_path / "hr" / f"{i}.png", 72, i)
        _png(tmp_path / "lr" / f"{i}.png", 20, 10 + i)
    group = click.Group()
    group.add_command(hllhgan_command)
    res = CliRunner().invoke(
        group,
        [
            "hllhgan",
            "--hr",
            str(tmp_path / "hr"),
            "--lr",
            str(tmp_path / "lr"),
            "--out",
            str(tmp_path / "run"),
            "--iters",
            "1",
            "--batch",
            "2",
        ],
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "run" / "h2l" / "config.json").is_file()

    from anyres.cli import main

    out = tmp_path / "lr4.png"
    res = CliRunner().invoke(
        main,
        [
            "degrade",
            str(tmp_path / "hr" / "0.png"),
            "--pipeline",
            "hllhgan",
            "--scale",
            "4",
            "--weights",
            str(tmp_path / "run" / "h2l"),
            "-o",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    assert Image.open(out).size == (18, 18)
    res = CliRunner().invoke(
        main,
        [
            "degrade",
            str(tmp_path / "hr" / "0.png"),
            "--pipeline",
            "hllhgan",
            "--scale",
            "4",
            "-o",
            str(tmp_path / "x.png"),
        ],
    )
    assert res.exit_code == 1 and "needs weights" in res.output and not (tmp_path / "x.png").exists()
    res = CliRunner().invoke(
        main, ["hllhgan", "--hr", str(tmp_path / "nope"), "--lr", str(tmp_path / "lr"), "--out", str(tmp_path / "run2")]
    )
    assert res.exit_code == 1 and "no such file or folder" in res.output
