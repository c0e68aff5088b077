"""Foreign checkpoints: BasicSR / Real-ESRGAN RRDBNet .pth files (tests/data/official), run at any scale with
exact two-stage tiling."""

from pathlib import Path

import numpy as np
import pytest
import torch

from anyres import load
from anyres.errors import RegistryError
from anyres.hub import load_network
from anyres.io import read_image
from anyres.ops.resize import resize
from anyres.sr.checkpoints import convert_checkpoint, read_checkpoint
from anyres.sr.fixed import FixedScaleUpscaler, native
from anyres.sr.render import RenderOptions
from anyres.sr.rrdbnet import RRDBNet

pytestmark = pytest.mark.usefixtures("one_thread")

OFFICIAL = Path(__file__).resolve().parents[1] / "data" / "official"


def _lr():
    return read_image(OFFICIAL / "input_24x30.png")[0]


@pytest.mark.parametrize("scale", [4, 2])
def test_the_official_outputs_are_reproduced(scale, tmp_path):
    folder = convert_checkpoint(OFFICIAL / f"rrdbnet-x{scale}-tiny.pth", tmp_path / "m")
    net, config = load_network(folder)
    assert {k: config[k] for k in ("n_feats", "n_blocks", "growth", "unshuffle")} == {
        "n_feats": 16,
        "n_blocks": 2,
        "growth": 8,
        "unshuffle": 4 // scale,
    }
    assert net.scale == scale and config["source"]["format"] == "BasicSR / Real-ESRGAN / ESRGAN RRDBNet .pth"
    expected = np.load(OFFICIAL / f"rrdbnet-x{scale}-tiny_outputs.npz")["native"]
    out = native(net, _lr())[0].numpy()
    assert out.shape == expected.shape == (3, 24 * scale, 30 * scale)
    assert np.abs(out - expected).max() < 1e-5


def _tiny(unshuffle):
    torch.manual_seed(1)
    net = RRDBNet(n_feats=8, n_blocks=1, growth=4, unshuffle=unshuffle).eval()
    with torch.no_grad():  # random biases too, so that zero padding at a wrong crop edge would show
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return net


@pytest.mark.parametrize("unshuffle", [1, 2])
@pytest.mark.parametrize("tile", [5, 16])
def test_tiling_is_exact(unshuffle, tile):
    # Radius 17 cells + 2 for the tail: an image over 19 + 2 * 19 cells a side is tiled in the trunk too.
    net = _tiny(unshuffle)
    lr = torch.rand(1, 3, 66 * unshuffle, 61 * unshuffle)
    whole = native(net, lr, tile=None)
    tiled = native(net, lr, tile=tile)
    assert whole.shape == (1, 3, 66 * 4, 61 * 4)
    assert torch.allclose(tiled, whole, atol=1e-5, rtol=0), (tiled - whole).abs().max()


def test_odd_sides_are_reflect_padded_then_cropped():
    net = _tiny(2)
    lr = torch.rand(1, 3, 13, 20)
    padded = torch.nn.functional.pad(lr, (0, 0, 0, 1), mode="reflect")
    with torch.no_grad():
        expected = net(padded)[..., :26, :40]
    assert torch.allclose(native(net, lr, tile=3), expected, atol=1e-5, rtol=0)


def test_any_size_is_bicubic_from_the_native_output():
    net = _tiny(1)
    lr = torch.rand(1, 3, 10, 12)
    up = FixedScaleUpscaler(net, options=RenderOptions(tile=None))
    nat = native(net, lr)
    assert torch.equal(up.upscale(lr, (40, 48)), nat)  # the native size: no resize
    assert torch.allclose(up.upscale(lr, (25, 37)), resize(nat, size=(25, 37), mode="bicubic"), atol=1e-6)
    gray = lr.mean(1, keepdim=True)
    assert up.upscale(gray, (25, 37)).shape == (1, 1, 25, 37)


def _renamed_to_esrgan(key):
    """xinntao/ESRGAN's names for the BasicSR tensors."""
    for old, new in (
        ("conv_body", "trunk_conv"),
        ("conv_up", "upconv"),
        ("conv_hr", "HRconv"),
        ("body.", "RRDB_trunk."),
    ):
        key = key.replace(old, new)
    return key.replace(".rdb", ".RDB")


def test_params_bare_and_esrgan_names_give_the_same_network(tmp_path):
    sd = torch.load(OFFICIAL / "rrdbnet-x4-tiny.pth", weights_only=True)["params_ema"]
    _, reference = read_checkpoint(OFFICIAL / "rrdbnet-x4-tiny.pth")
    variants = {
        "params": {"params": sd},
        "both": {"params": {k: v * 0 for k, v in sd.items()}, "params_ema": sd},  # the EMA weights win
        "bare": dict(sd),
        "esrgan": {_renamed_to_esrgan(k): v for k, v in sd.items()},
    }
    for name, ckpt in variants.items():
        torch.save(ckpt, tmp_path / f"{name}.pth")
        _, converted = read_checkpoint(tmp_path / f"{name}.pth")
        assert converted.config == reference.config, name
        assert converted.state.keys() == reference.state.keys(), name
        assert all(torch.equal(v, reference.state[k]) for k, v in converted.state.items()), name


def test_unsupported_channel_counts_are_refused(tmp_path):
    sd = dict(torch.load(OFFICIAL / "rrdbnet-x4-tiny.pth", weights_only=True)["params_ema"])
    sd["conv_first.weight"] = torch.zeros(16, 1, 3, 3)  # a grayscale model
    torch.save({"params_ema": sd}, tmp_path / "gray.pth")
    with pytest.raises(RegistryError, match="1 input / 3 output channels is not supported"):
        read_checkpoint(tmp_path / "gray.pth")


def test_anyres_load_gives_a_fixed_scale_upscaler_at_any_size():
    up = load(OFFICIAL / "rrdbnet-x2-tiny.pth", options={"tile": 4})
    assert isinstance(up, FixedScaleUpscaler) and up.scale == 2
    lr = _lr()
    expected = torch.from_numpy(np.load(OFFICIAL / "rrdbnet-x2-tiny_outputs.npz")["native"])[None]
    assert torch.allclose(up.upscale(lr, (48, 60)), expected, atol=1e-5, rtol=0)
    assert up.upscale(lr, (31, 77)).shape == (1, 3, 31, 77)


def test_the_converted_card_says_where_it_came_from_under_an_unknown_license(tmp_path):
    import yaml

    folder = convert_checkpoint(OFFICIAL / "rrdbnet-x4-tiny.pth", tmp_path / "m")
    text = (folder / "README.md").read_text()
    meta = yaml.safe_load(text.split("---\n")[1])
    assert meta["license"] == "unknown" and {"rrdbnet", "converted"} <= set(meta["tags"])
    assert "rrdbnet-x4-tiny.pth" in text and "model-index" not in meta  # nothing measured by anyres
