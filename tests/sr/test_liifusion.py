"""LIIFusion specifics: the prior encoder and injector, the 4-step schedule and sampler, stage 2 from stage 1.
(The shared network contract is in test_model_contract.py.)"""

import pytest
import torch

import anyres.enhancement  # noqa: F401  (registers the networks)
import anyres.sr  # noqa: F401
from anyres.hub import save_network
from anyres.sr.liifusion import DiffusionSchedule, LIIFusion, LIIFusionConfig, PriorDenoiser, PriorEncoder, sample_prior
from conftest import tiny_liif_config

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(**overrides):
    return {
        **tiny_liif_config(),
        "prior_dim": 16,
        "prior_blocks": 1,
        "inject_depth": 2,
        "window": 4,
        "heads": 2,
        **overrides,
    }


def test_schedule_matches_diffir_values():
    s = DiffusionSchedule(4, 0.1, 0.99)
    torch.testing.assert_close(
        s.betas, torch.tensor([0.1, 0.29428, 0.59097, 0.99], dtype=torch.float64), atol=1e-4, rtol=0
    )
    torch.testing.assert_close(
        s.alphas_cumprod, torch.tensor([0.9, 0.6351, 0.2598, 0.0026], dtype=torch.float64), atol=1e-4, rtol=0
    )
    torch.testing.assert_close(
        s.coef1, torch.tensor([1.0, 0.7652, 0.6363, 0.5059], dtype=torch.float64), atol=1e-4, rtol=0
    )
    torch.testing.assert_close(
        s.coef2, torch.tensor([0.0, 0.2302, 0.3153, 0.0742], dtype=torch.float64), atol=1e-4, rtol=0
    )
    # x_T keeps sqrt(abar_T) of the signal
    z, eps = torch.ones(2, 3), torch.zeros(2, 3)
    torch.testing.assert_close(s.noisy_start(z, eps), torch.full((2, 3), 0.0026**0.5), atol=2e-3, rtol=0)


def test_sampler_runs_the_chain_in_order_and_is_deterministic():
    s = DiffusionSchedule(4)
    calls = []

    class Probe(torch.nn.Module):  # records t and returns a known x0 so the chain can be followed by hand
        timesteps = 4

        def forward(self, cond, t, x_t):
            calls.append(t)
            return torch.full_like(x_t, float(t + 1))

    x_t = torch.full((1, 2), 5.0)
    out = sample_prior(Probe(), torch.zeros(1, 2), s, x_t)
    assert calls == [3, 2, 1, 0]
    assert torch.equal(out, torch.full((1, 2), 1.0))  # the last x0 estimate (t = 0)
    den = PriorDenoiser(8, blocks=2)
    cond = torch.randn(3, 8)
    a = sample_prior(den, cond, s, torch.randn(3, 8, generator=torch.Generator().manual_seed(4)))
    b = sample_prior(den, cond, s, torch.randn(3, 8, generator=torch.Generator().manual_seed(4)))
    c = sample_prior(den, cond, s, torch.randn(3, 8, generator=torch.Generator().manual_seed(5)))
    assert torch.equal(a, b) and not torch.allclose(a, c)


def test_stage2_lr_prior_is_deterministic_for_a_seed():
    net = LIIFusion(tiny(stage=2)).eval()
    lr = torch.rand(1, 3, 9, 10)
    with torch.no_grad():
        a, b, c = net.encode(lr, seed=3), net.encode(lr, seed=3), net.encode(lr, seed=4)
    assert torch.equal(a, b) and not torch.allclose(a, c)


def test_upscaler_seed_fixes_the_image_and_tiling_does_not_change_it():
    from anyres.sr.render import LIIFUpscaler

    net = LIIFusion(tiny(stage=2)).eval()
    lr = torch.rand(1, 3, 12, 10)
    a = LIIFUpscaler(net, mode="exact", tile=None, seed=3).upscale(lr, (30, 25))
    b = LIIFUpscaler(net, mode="exact", tile=4, seed=3).upscale(lr, (30, 25))  # tiling ignored: one pass
    c = LIIFUpscaler(net, mode="exact", tile=None, seed=4).upscale(lr, (30, 25))
    assert torch.equal(a, b) and not torch.equal(a, c)
    from anyres.sr.render import render

    for image, seed in ((a, 3), (c, 4)):  # the image is the render with the prior sampled from that seed
        with torch.no_grad():
            prior = net.lr_prior(lr, seed)
        assert torch.equal(image, render(net, lr, (30, 25), mode="exact", prior=prior))


def test_prior_encoder_pads_and_sees_both_images():
    enc = PriorEncoder(2, 8, 1, 16)
    a, b = torch.rand(2, 3, 18, 21), torch.rand(2, 3, 18, 21)
    z = enc(a, b)
    assert z.shape == (2, 16) and torch.isfinite(z).all()
    assert not torch.allclose(z, enc(a, torch.rand(2, 3, 18, 21)))  # the HR input matters
    with pytest.raises(ValueError, match="takes 2 images"):
        enc(a)


def test_the_hr_prior_changes_the_result_and_batches_mixed_sizes():
    net = LIIFusion(tiny()).eval()
    lr = torch.rand(2, 3, 8, 8)
    hrs = [torch.rand(3, 16, 16), torch.rand(3, 24, 24)]
    prior, aux = net.prior_batch(lr, hrs)
    assert prior.shape == (2, 16) and aux is None
    torch.testing.assert_close(prior[1:], net.prior_from(lr[1:], hrs[1][None]))
    with torch.no_grad():
        assert not torch.allclose(net.encode(lr, prior), net.encode(lr))


def test_stage1_started_from_liif_with_identity_injector_equals_liif(tmp_path):
    from anyres.sr.liif import LIIF
    from anyres.train.engine import load_init_weights

    torch.manual_seed(0)
    liif = LIIF(tiny_liif_config()).eval()
    save_network(liif, tmp_path / "liif")
    windowed = {"inject": "features", "prior_layout": "window"}
    variants = (
        {"inject": "queries", "prior_layout": "image"},
        {"inject": "features", "prior_layout": "image"},
        windowed,
        {**windowed, "prior_pool": "unshuffle", "prior_pixels": True},  # the pixel path starts at zero
    )
    for variant in variants:
        net = LIIFusion(tiny(start_identity=True, prior_norm="batch", **variant)).eval()
        load_init_weights(net, str(tmp_path / "liif"), net.init_new_modules)
        lr, coord = torch.rand(1, 3, 8, 8), torch.rand(1, 20, 2) * 2 - 1
        cell = torch.full((1, 20, 2), 2 / 16)
        with torch.no_grad():
            prior = net.prior_from(lr, torch.rand(1, 3, 16, 16))
            torch.testing.assert_close(net(lr, coord, cell, prior=prior), liif(lr, coord, cell), atol=0, rtol=0)
    # a stage-1 file with part of the injector is no LIIF file: refused, not half-initialised
    save_network(LIIFusion(tiny(inject_depth=1)), tmp_path / "s1")
    from anyres.errors import ConfigError

    with pytest.raises(ConfigError, match="does not match"):
        load_init_weights(LIIFusion(tiny()), str(tmp_path / "s1"), ("prior_encoder.", "injector."))


def test_start_scale_shrinks_the_injector_output_conv_and_is_validated():
    torch.manual_seed(3)
    full = LIIFusion(tiny(start_identity=False))
    torch.manual_seed(3)
    small = LIIFusion(tiny(start_identity=False, start_scale=0.1))
    torch.testing.assert_close(small.injector.conv.weight, 0.1 * full.injector.conv.weight)
    torch.testing.assert_close(small.injector.conv.bias, 0.1 * full.injector.conv.bias)
    # everything else is drawn identically
    torch.testing.assert_close(small.injector.layers[0].state_dict(), full.injector.layers[0].state_dict())
    for bad in (0.0, -0.5, 1.5):
        with pytest.raises(ValueError, match="start_scale"):
            LIIFusion(tiny(start_scale=bad))


def test_new_modules_learn_at_their_own_rate(tmp_path):
    from anyres.sr.liif import LIIF
    from anyres.train.engine import build
    from anyres.train.recipes.sr import DataConfig, OptimConfig, TrainConfig

    save_network(LIIF(tiny_liif_config()), tmp_path / "liif")
    g = torch.Generator().manual_seed(1)
    images = [torch.randint(0, 256, (3, 40, 40), generator=g, dtype=torch.uint8) for _ in range(2)]
    cfg = TrainConfig(
        model={"name": "liifusion", "args": tiny(start_identity=True)},
        init=str(tmp_path / "liif"),
        data=DataConfig(patch=8, scale_min=1.0, scale_max=3.0, queries=32),
        batch_size=2,
        iterations=3,
        optim=OptimConfig(lr=1e-3, warmup=2, new_modules_lr_scale=10),
        checkpoint_minutes=1e9,
        log_every=1000,
        out_dir=str(tmp_path / "run"),
    )
    trainer = build(cfg, images=images, log=lambda msg: None)
    net = trainer.recipe.net
    old, new = trainer.recipe.optim.param_groups
    fresh = {id(p) for n, p in net.named_parameters() if n.startswith(("prior_encoder.", "injector."))}
    assert {id(p) for p in new["params"]} == fresh and not fresh & {id(p) for p in old["params"]}
    trainer.run()
    # after the warm-up: the base rate for the LIIF part, ten times that for the new modules
    assert old["lr"] == pytest.approx(1e-3) and new["lr"] == pytest.approx(1e-2)


def test_batch_prior_norm_standardises_over_the_batch_in_training_only():
    torch.manual_seed(0)
    net = LIIFusion(tiny(prior_norm="batch"))
    lr = torch.rand(4, 3, 8, 8)
    hrs = [torch.rand(3, 16, 16), torch.rand(3, 24, 24), torch.rand(3, 16, 16), torch.rand(3, 20, 20)]
    prior, _ = net.prior_batch(lr, hrs)  # one image at a time through the encoder, standardised together
    torch.testing.assert_close(prior.mean(0), torch.zeros(16), atol=1e-5, rtol=0)
    raw = torch.cat([net.prior_from(lr[i : i + 1], h[None], normalise=False) for i, h in enumerate(hrs)])
    torch.testing.assert_close(prior, (raw - raw.mean(0)) / (raw.var(0, unbiased=False) + 1e-5).sqrt())
    net.eval()  # inference: the running statistics, so one image alone is fine
    bn = net.prior_encoder.norm
    one = net.prior_from(lr[:1], hrs[0][None])
    expected = (raw[:1] - bn.running_mean) / (bn.running_var + bn.eps).sqrt()
    torch.testing.assert_close(one, expected, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="prior_norm"):
        LIIFusionConfig.from_dict(tiny(prior_norm="layer"))
    with pytest.raises(ValueError, match="inject"):
        LIIFusionConfig.from_dict(tiny(inject="values"))


def test_stage2_initialises_from_stage1_and_freezes_the_prior_encoder(tmp_path):
    from anyres.train.engine import build
    from anyres.train.recipes.sr import DataConfig, OptimConfig, TrainConfig

    s1 = LIIFusion(tiny())
    save_network(s1, tmp_path / "s1")
    g = torch.Generator().manual_seed(1)
    images = [torch.randint(0, 256, (3, 40, 40), generator=g, dtype=torch.uint8) for _ in range(2)]
    cfg = TrainConfig(
        model={"name": "liifusion", "args": tiny(stage=2)},
        init=str(tmp_path / "s1"),
        data=DataConfig(patch=8, scale_min=1.0, scale_max=3.0, queries=32),
        batch_size=2,
        iterations=2,
        optim=OptimConfig(lr=1e-3),
        checkpoint_minutes=1e9,
        log_every=1000,
        out_dir=str(tmp_path / "run"),
    )
    trainer = build(cfg, images=images, log=lambda msg: None)
    for k, v in s1.state_dict().items():
        assert torch.equal(trainer.recipe.net.state_dict()[k], v), k
    denoiser0 = {k: v.clone() for k, v in trainer.recipe.net.denoiser.state_dict().items()}
    trainer.run()
    for k, v in s1.prior_encoder.state_dict().items():  # frozen: stage 2's target does not move
        assert torch.equal(trainer.recipe.net.prior_encoder.state_dict()[k], v), k
    assert any(not torch.equal(v, trainer.recipe.net.denoiser.state_dict()[k]) for k, v in denoiser0.items())
    # a stage-1 model started from a file lacking its weights is refused
    bad = TrainConfig(
        model={"name": "liifusion", "args": tiny(inject_depth=3)},
        init=str(tmp_path / "s1"),
        data=cfg.data,
        out_dir=str(tmp_path / "run2"),
    )
    from anyres.errors import ConfigError

    with pytest.raises(ConfigError, match="does not match"):
        build(bad, images=images, log=lambda msg: None)


def test_stage2_without_its_hr_prior_encoder_renders_the_same_and_round_trips(tmp_path):
    from anyres.hub import load_network
    from anyres.sr.render import LIIFUpscaler

    full = LIIFusion(tiny(stage=2)).eval()
    slim = LIIFusion(tiny(stage=2, hr_prior_encoder=False)).eval()
    assert slim.prior_encoder is None
    state = {k: v for k, v in full.state_dict().items() if not k.startswith("prior_encoder.")}
    assert len(state) < len(full.state_dict())
    slim.load_state_dict(state)  # strict: the prior encoder is all it lacks
    lr = torch.rand(1, 3, 9, 10)
    for seed in (0, 1):
        assert torch.equal(
            LIIFUpscaler(full, mode="exact", seed=seed).upscale(lr, (20, 23)),
            LIIFUpscaler(slim, mode="exact", seed=seed).upscale(lr, (20, 23)),
        )
    save_network(slim, tmp_path / "s2", float16=True)
    loaded, config = load_network(tmp_path / "s2")
    assert config["hr_prior_encoder"] is False and loaded.prior_encoder is None
    with pytest.raises(RuntimeError, match="without its HR prior encoder"):
        loaded.prior_from(lr, torch.rand(1, 3, 18, 20))
    with pytest.raises(ValueError, match="stage 1 needs its prior encoder"):
        LIIFusionConfig(stage=1, hr_prior_encoder=False)


def test_shipped_stage2_leaves_out_the_prior_encoder_and_shipped_files_are_float16():
    from safetensors import safe_open

    from anyres.hub import WEIGHTS_DIR, load_network

    for folder in sorted(WEIGHTS_DIR.iterdir()):
        with safe_open(str(folder / "model.safetensors"), framework="pt") as f:
            dtypes = {k: f.get_slice(k).get_dtype() for k in f.keys()}
            keys = set(f.keys())
        # float16, but for the decoders of the SR models (float32: fast mode casts them to bfloat16)
        decoder = ("imnet.", "modulation.", "synthesis.", "out.")
        assert {d for k, d in dtypes.items() if not k.startswith(decoder)} == {"F16"}, folder.name
        assert {d for k, d in dtypes.items() if k.startswith(decoder)} <= {"F32"}, folder.name
        if folder.name == "liifusion":
            assert keys and not any(k.startswith("prior_encoder.") for k in keys)
    net, config = load_network(WEIGHTS_DIR / "liifusion")
    assert net.config.stage == 2 and net.prior_encoder is None
    assert all(p.dtype == torch.float32 for p in net.parameters())


def test_config_is_validated():
    with pytest.raises(ValueError, match="stage"):
        LIIFusionConfig(stage=3)
    with pytest.raises(ValueError, match="unknown LIIF config keys"):
        LIIFusionConfig.from_dict({"widnow": 8})


def test_window_prior_pools_the_encoder_map_over_each_window_and_stays_local():
    import torch.nn.functional as F

    torch.manual_seed(0)
    enc = PriorEncoder(2, 8, 1, 16, window=4).eval()
    lr_up, hr = torch.rand(1, 3, 64, 56), torch.rand(1, 3, 64, 56)
    z = enc(lr_up, hr, lr_size=(30, 26))  # a 30 x 26 LR map: 8 x 7 windows, the last row and column partial
    assert z.shape == (1, 8, 7, 16)
    with torch.no_grad():
        x = F.pixel_unshuffle(torch.cat([(lr_up - 0.5) / 0.5, (hr - 0.5) / 0.5], 1), 4)
        feat = F.adaptive_avg_pool2d(enc.body(x), (30, 26))
        for i, j in ((0, 0), (3, 5), (7, 6)):  # (7, 6): a 2 x 2 window, the map's last pixels only
            cell = feat[0, :, 4 * i : 4 * i + 4, 4 * j : 4 * j + 4].mean(dim=(1, 2))
            torch.testing.assert_close(z[0, i, j], enc.mlp(cell), atol=1e-5, rtol=1e-5)
        # a change in the top-left corner of the HR leaves the far windows' priors exactly as they were
        hr2 = hr.clone()
        hr2[..., :8, :8] = 1 - hr2[..., :8, :8]
        z2 = enc(lr_up, hr2, lr_size=(30, 26))
    assert not torch.allclose(z2[0, 0, 0], z[0, 0, 0])
    assert torch.equal(z2[0, 6:, 5:], z[0, 6:, 5:])
    with pytest.raises(ValueError, match="lr_size"):
        enc(lr_up, hr)


@pytest.mark.parametrize("inject", ["queries", "features"])
def test_window_prior_of_one_vector_everywhere_equals_the_image_prior(inject):
    torch.manual_seed(1)
    net = LIIFusion(tiny(prior_layout="window", inject=inject)).eval()
    lr, v = torch.rand(2, 3, 10, 7), torch.randn(2, 16)  # padded to 12 x 8: 3 x 2 windows of 4
    with torch.no_grad():
        flat = net.encode(lr, v)
        torch.testing.assert_close(net.encode(lr, v[:, None, None].expand(2, 3, 2, 16)), flat, atol=1e-6, rtol=0)
        # a map of another grid (another image's prior) is resampled to this map's windows, nearest
        other = torch.randn(2, 6, 4, 16)
        torch.testing.assert_close(net.encode(lr, other), net.encode(lr, other[:, ::2, ::2]), atol=0, rtol=0)
        # per-window: each window's prior acts on its own window's features first (no shift in layer 0)
        prior = net.prior_from(lr, torch.rand(2, 3, 20, 14))
        assert prior.shape == (2, 3, 2, 16)
        assert not torch.allclose(net.encode(lr, prior), flat)


def test_window_prior_trains_standardised_over_windows_and_samples_per_window_in_stage2():
    torch.manual_seed(2)
    net = LIIFusion(tiny(prior_layout="window", prior_norm="batch"))
    lr = torch.rand(3, 3, 8, 8)
    hrs = [torch.rand(3, 16, 16), torch.rand(3, 24, 24), torch.rand(3, 20, 20)]
    prior, aux = net.prior_batch(lr, hrs)
    assert prior.shape == (3, 2, 2, 16) and aux is None  # each window standardised with all the others
    torch.testing.assert_close(prior.reshape(-1, 16).mean(0), torch.zeros(16), atol=1e-5, rtol=0)
    s2 = LIIFusion(tiny(prior_layout="window", stage=2)).eval()
    with torch.no_grad():
        a, b, c = s2.lr_prior(lr[:1, :, :7], 3), s2.lr_prior(lr[:1, :, :7], 3), s2.lr_prior(lr[:1, :, :7], 4)
    assert a.shape == (1, 2, 2, 16) and torch.equal(a, b) and not torch.allclose(a, c)
    s2.train()
    prior, aux = s2.prior_batch(lr, hrs, torch.Generator().manual_seed(0))
    assert prior.shape == (3, 2, 2, 16)
    with torch.no_grad():
        target = torch.cat([s2.prior_from(lr[i : i + 1], h[None]) for i, h in enumerate(hrs)])
    torch.testing.assert_close(aux, (prior - target).abs().mean())  # per-window L1 to the frozen stage-1 map
    with pytest.raises(ValueError, match="prior_layout"):
        LIIFusionConfig.from_dict(tiny(prior_layout="pixel"))


def test_kaiming_prior_init_keeps_the_signal_that_the_default_init_loses():
    # eight flat-coloured images with a little texture: priors that cannot tell them apart carry nothing
    g = torch.Generator().manual_seed(0)
    hr = torch.rand(8, 3, 1, 1, generator=g) * 0.8 + 0.1 + 0.05 * torch.rand(8, 3, 32, 32, generator=g)
    spread = {}
    for init in ("torch", "kaiming"):
        torch.manual_seed(0)
        enc = PriorEncoder(2, 16, 2, 32, init=init)
        with torch.no_grad():
            spread[init] = float(enc.unnormalised(hr, hr).var(0).mean())
    eps = torch.nn.BatchNorm1d(1).eps  # what a batch-norm prior adds to the variance it divides by
    assert spread["torch"] < eps < spread["kaiming"] / 100
    torch.manual_seed(0)
    enc = PriorEncoder(2, 16, 2, 32, init="kaiming")
    layers = [m for m in enc.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert all(not m.bias.detach().any() for m in layers)
    with pytest.raises(ValueError, match="prior_init"):
        LIIFusionConfig.from_dict(tiny(prior_init="xavier"))


def test_unshuffled_window_prior_sees_where_things_are_in_a_window_and_stays_local():
    import torch.nn.functional as F

    torch.manual_seed(0)
    mean = PriorEncoder(2, 8, 1, 16, window=4, init="kaiming").eval()
    stack = PriorEncoder(2, 8, 1, 16, window=4, init="kaiming", pool="unshuffle").eval()
    stack.load_state_dict(mean.state_dict(), strict=False)  # the same body: only the pooling differs
    lr_up, hr = torch.rand(1, 3, 64, 56), torch.rand(1, 3, 64, 56)
    with torch.no_grad():
        z = stack(lr_up, hr, lr_size=(16, 14))  # 4 x 4 windows, the last column partial (zero-padded)
        assert z.shape == (1, 4, 4, 16)
        x = F.pixel_unshuffle(torch.cat([(lr_up - 0.5) / 0.5, (hr - 0.5) / 0.5], 1), 4)
        feat = F.adaptive_avg_pool2d(stack.body(x), (16, 14))
        padded = F.pad(stack.reduce(feat), (0, 2))
        for i, j in ((0, 0), (2, 1), (3, 3)):
            block = padded[0, :, 4 * i : 4 * i + 4, 4 * j : 4 * j + 4]  # (16, 4, 4): channel-major, as unshuffle
            torch.testing.assert_close(z[0, i, j], stack.mlp(stack.stack(block.reshape(-1))), atol=1e-5, rtol=1e-5)
        # two pixels of window (1, 2) swapped: the mean-pooled vector cannot tell, the stacked one can, and no
        # other window's vector moves
        swapped = feat.clone()
        swapped[..., 5, 9], swapped[..., 6, 10] = feat[..., 6, 10], feat[..., 5, 9]
        moved = [(e.pool_windows(swapped) - e.pool_windows(feat)).abs().amax(-1)[0] for e in (mean, stack)]
    assert float(moved[0].max()) < 1e-6
    assert float(moved[1][1, 2]) > 1e-3 and float(moved[1].sum() - moved[1][1, 2]) == 0
    with pytest.raises(ValueError, match="prior_layout"):
        LIIFusionConfig.from_dict(tiny(prior_pool="unshuffle"))
    with pytest.raises(ValueError, match="prior_pool"):
        LIIFusionConfig.from_dict(tiny(prior_layout="window", prior_pool="max"))


def test_prior_pixels_adds_each_windows_term_to_its_own_pixels_and_gets_gradients_from_zero():
    torch.manual_seed(4)
    net = LIIFusion(tiny(inject="features", prior_layout="window", prior_pixels=True, start_identity=True))
    lr, hr = torch.rand(2, 3, 8, 6), torch.rand(2, 3, 16, 12)  # an 8 x 6 map, padded to 8 x 8: 2 x 2 windows
    coord, cell = torch.rand(2, 30, 2) * 2 - 1, torch.full((2, 30, 2), 2 / 16)
    loss = (net(lr, coord, cell, prior=net.prior_from(lr, hr)) - torch.rand(2, 30, 3)).abs().mean()
    loss.backward()
    # zero-initialised, yet its weights get a gradient at once (the prior multiplies it), unlike the prior encoder
    # behind a zeroed output conv
    assert net.injector.pixels.weight.grad.abs().sum() > 0
    assert all(not p.grad.any() for p in net.prior_encoder.parameters() if p.grad is not None)
    inj = net.injector.eval()
    with torch.no_grad():
        torch.nn.init.normal_(inj.pixels.weight)
        prior = torch.randn(2, 2, 2, 16)
        term = inj.pixel_term(prior, (8, 8))
        assert term.shape == (2, 8, 8, 8)  # (B, C, H, W): C = 8 latent channels of the tiny encoder
        # pixel (u, v) of window (i, j): entry (u, v, c) of that window's mapped vector
        mapped = inj.pixels(prior[1, 1, 0]).reshape(4, 4, 8)
        torch.testing.assert_close(term[1, :, 4:8, 0:4], mapped.permute(2, 0, 1), atol=1e-6, rtol=0)
        changed = prior.clone()
        changed[0, 1, 0] += 1
        diff = (inj.pixel_term(changed, (8, 8)) - term)[0].abs().sum(0)
    assert diff[4:, :4].min() > 0 and not diff[:4].any() and not diff[:, 4:].any()
    with pytest.raises(ValueError, match="prior_layout"):
        LIIFusionConfig.from_dict(tiny(prior_pixels=True))


def test_windows_prior_norm_standardises_each_image_over_its_own_windows_in_training_and_inference():
    torch.manual_seed(5)
    net = LIIFusion(tiny(prior_layout="window", prior_norm="windows", prior_init="kaiming"))
    lr = torch.rand(2, 3, 12, 12)  # 3 x 3 windows of 4
    hrs = [torch.rand(3, 24, 24), torch.rand(3, 36, 36)]
    prior, _ = net.prior_batch(lr, hrs)
    assert prior.shape == (2, 3, 3, 16)
    var, mean = torch.var_mean(prior, dim=(1, 2), unbiased=False)
    with torch.no_grad():
        raw = torch.cat([net.prior_from(lr[i : i + 1], h[None], normalise=False) for i, h in enumerate(hrs)])
    raw_var = raw.var(dim=(1, 2), unbiased=False)
    torch.testing.assert_close(mean, torch.zeros(2, 16), atol=1e-5, rtol=0)
    torch.testing.assert_close(var, raw_var / (raw_var + 1e-5), atol=1e-4, rtol=1e-4)  # unit variance, but eps
    with torch.no_grad():
        alone = net.eval().prior_from(lr[1:], hrs[1][None])  # in inference, alone: the same as in the batch
    torch.testing.assert_close(alone, prior[1:].detach(), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="prior_layout"):
        LIIFusionConfig.from_dict(tiny(prior_norm="windows"))
