"""Blind any-scale SR of one image: internal pairs with the image's own kernel, adaptation, rendering."""

import pytest
import torch
from click.testing import CliRunner

from anyres.cli import main
from anyres.errors import AnyresError
from anyres.io import write_image
from anyres.ops.kernels import gaussian_kernel
from anyres.registry import NETWORKS
from anyres.sr.blind import blind_upscale, internal_finetune, make_internal_pair
from anyres.sr.render import LIIFUpscaler
from conftest import tiny_liif_config


def _image(h=64, w=72, seed=0):
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(1, 3, h // 6, w // 6, generator=g)
    img = torch.nn.functional.interpolate(base, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)
    return torch.round(img * 255) / 255


def _kernel():
    return gaussian_kernel(
        9,
        torch.tensor([1.2], dtype=torch.float64),
        torch.tensor([0.7], dtype=torch.float64),
        torch.tensor([0.4], dtype=torch.float64),
    )[0]


def _net(seed=0):
    torch.manual_seed(seed)
    return NETWORKS.build("liif", **tiny_liif_config())


def test_internal_pairs_are_the_kernel_filtered_crop_at_even_pixels():
    img, k = _image(), _kernel()
    son, father = make_internal_pair(img, k, 8, torch.Generator().manual_seed(1), 3)
    assert son.shape == (3, 3, 8, 8) and father.shape == (3, 3, 16, 16)
    # Son pixel (i, j) is the kernel-weighted sum around father pixel (2i, 2j), away from the borders.
    f = father[1].double()
    i, j = 3, 4
    patch = f[:, 2 * i - 4 : 2 * i + 5, 2 * j - 4 : 2 * j + 5]
    expected = (patch * k.double()).sum(dim=(-2, -1))
    torch.testing.assert_close(son[1, :, i, j].double(), torch.round(expected * 255) / 255, atol=1e-6, rtol=0)
    # Every father is a crop of the image.
    found = any(
        torch.equal(img[0, :, y : y + 16, x : x + 16], father[0]) for y in range(64 - 15) for x in range(72 - 15)
    )
    assert found
    with pytest.raises(AnyresError, match="too small"):
        make_internal_pair(img[..., :10, :10], k, 8, torch.Generator(), 1)


@pytest.mark.slow
def test_adaptation_lowers_the_internal_loss_leaves_the_original_and_is_seeded():
    net, img, k = _net(), _image(), _kernel()
    before = {n: p.clone() for n, p in net.state_dict().items()}
    tuned, losses = internal_finetune(net, img, k, iters=40, patch=8, batch=4, lr=2e-3, seed=3)
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5
    assert all(torch.equal(before[n], p) for n, p in net.state_dict().items())  # the original is untouched
    again, losses2 = internal_finetune(net, img, k, iters=40, patch=8, batch=4, lr=2e-3, seed=3)
    assert losses == losses2
    assert all(torch.equal(a, b) for a, b in zip(tuned.state_dict().values(), again.state_dict().values()))


def test_blind_upscale_with_a_given_kernel_renders_the_size_and_reports():
    up = LIIFUpscaler(_net(), name="tiny", mode="exact", tile=None)
    img = _image()
    sr, info = blind_upscale(up, img, (150, 170), kernel=_kernel(), iters=3)
    assert sr.shape == (1, 3, 150, 170) and torch.isfinite(sr).all()
    assert info["iters"] == 3 and len(info["kernel"]) == 9 and info["loss_last"] is not None
    plain = up.upscale(img, (150, 170))
    assert not torch.equal(sr, plain)  # the adapted copy renders differently
    sr0, _ = blind_upscale(up, img, (150, 170), kernel=_kernel(), iters=0)
    torch.testing.assert_close(sr0, plain)  # zero steps: the model itself


def test_cli_blind_user_errors(tmp_path):
    write_image(tmp_path / "a.png", _image())
    r = CliRunner().invoke(
        main,
        [
            "upscale",
            str(tmp_path / "a.png"),
            "--scale",
            "2",
            "--blind",
            "--model",
            "bicubic",
            "-o",
            str(tmp_path / "o.png"),
        ],
    )
    assert r.exit_code == 1 and "interpolation baseline" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(
        main, ["upscale", str(tmp_path / "a.png"), "--scale", "2", "--blind-iters", "5", "-o", str(tmp_path / "o.png")]
    )
    assert r.exit_code == 1 and "--blind-iters needs --blind" in r.output
    assert not (tmp_path / "o.png").exists()
