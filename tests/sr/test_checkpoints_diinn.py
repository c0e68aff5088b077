"""Foreign checkpoints: the DIINN PyTorch Lightning .ckpt layout mapped onto anyres's DIINN (tests/data/official)."""

from pathlib import Path

import numpy as np
import pytest
import torch

from anyres.errors import RegistryError
from anyres.hub import load_network
from anyres.io import read_image
from anyres.registry import load
from anyres.sr.checkpoints import convert_checkpoint, read_checkpoint
from anyres.sr.render import render

OFFICIAL = Path(__file__).resolve().parents[1] / "data" / "official"
SIZES = ((48, 60), (72, 90), (101, 83))


def test_diinn_rdn_tiny_renders_the_official_outputs(tmp_path):
    folder = convert_checkpoint(OFFICIAL / "diinn-rdn-tiny.ckpt", tmp_path / "diinn-tiny")
    net, config = load_network(folder)
    assert config["arch"] == "diinn" and config["hidden"] == [256] * 4
    assert config["encoder"] == {"name": "rdn", "args": {"g0": 32, "n_blocks": 2, "n_layers": 3, "growth": 16}}
    assert config["feat_unfold"] is True and config["scale_input"] == "inv_scale_sq"
    assert config["source"]["format"] == "robotic-vision-lab/DIINN .ckpt"
    lr = read_image(OFFICIAL / "input_24x30.png")[0]
    outputs = np.load(OFFICIAL / "diinn-rdn-tiny_outputs.npz")
    for h, w in SIZES:  # no ensemble, so no tie between latents: every pixel matches (measured ~6e-8)
        with torch.no_grad():
            sr = render(net, lr, (h, w), mode="exact", tile=None)[0].numpy()
        err = np.abs(sr - outputs[f"{h}x{w}"]).max()
        assert err < 1e-5, (h, w, err)


def _official_diinn(g0=8, n_blocks=2, n_layers=2, growth=4, hidden=(12, 10, 6), **hp):
    """A checkpoint in the DIINN repository's Lightning layout (its key names and shapes), random tensors."""
    g = torch.Generator().manual_seed(2)
    shapes = {"net.encoder.SFENet1.weight": (g0, 3, 3, 3), "net.encoder.SFENet2.weight": (g0, g0, 3, 3)}
    for b in range(n_blocks):
        for i in range(n_layers):
            shapes[f"net.encoder.RDBs.{b}.convs.{i}.conv.0.weight"] = (growth, g0 + i * growth, 3, 3)
        shapes[f"net.encoder.RDBs.{b}.LFF.weight"] = (g0, g0 + n_layers * growth, 1, 1)
    shapes |= {"net.encoder.GFF.0.weight": (g0, n_blocks * g0, 1, 1), "net.encoder.GFF.1.weight": (g0, g0, 3, 3)}
    for i, (a, b) in enumerate(zip((3, *hidden[:-1]), hidden)):
        shapes[f"net.decoder.K.{i}.0.weight"] = (b, 9 * g0 + (a if i else 0), 1, 1)
        shapes[f"net.decoder.Q.{i}.0.weight"] = (b, a, 1, 1)
    shapes["net.decoder.last_layer.weight"] = (3, hidden[-1], 1, 1)
    shapes |= {k.replace("weight", "bias"): (s[0],) for k, s in shapes.items()}
    sd = {k: torch.randn(s, generator=g) for k, s in shapes.items()}
    sd |= {"sub": torch.full((1, 1, 1, 1), 0.5), "div": torch.full((1, 1, 1, 1), 0.5)}
    hyper = {"arch": "diinn", "mode": 3, "init_q": False, "lr": 1e-4, **hp}
    return {"state_dict": sd, "hyper_parameters": hyper, "epoch": 1, "pytorch-lightning_version": "1.6.0"}


def test_diinn_layout_round_trips(tmp_path):
    ckpt = _official_diinn()
    torch.save(ckpt, tmp_path / "tiny.ckpt")
    net, config = load_network(convert_checkpoint(tmp_path / "tiny.ckpt", tmp_path / "tiny"))
    assert config["encoder"]["args"] == {"g0": 8, "n_blocks": 2, "n_layers": 2, "growth": 4}
    assert config["hidden"] == [12, 10, 6]
    sd, state = ckpt["state_dict"], net.state_dict()
    pairs = {"encoder.sfe2.bias": "net.encoder.SFENet2.bias"}
    pairs["encoder.blocks.1.layers.1.conv.weight"] = "net.encoder.RDBs.1.convs.1.conv.0.weight"
    pairs |= {
        "encoder.blocks.0.fuse.weight": "net.encoder.RDBs.0.LFF.weight",
        "encoder.gff.1.bias": "net.encoder.GFF.1.bias",
    }
    pairs |= {"modulation.2.weight": "net.decoder.K.2.0.weight", "synthesis.1.bias": "net.decoder.Q.1.0.bias"}
    pairs |= {"synthesis.0.weight": "net.decoder.Q.0.0.weight", "out.weight": "net.decoder.last_layer.weight"}
    for ours, theirs in pairs.items():
        assert torch.equal(state[ours], sd[theirs].reshape(state[ours].shape)), ours
    # every tensor but the normalisation buffers is carried over, value for value
    carried = sorted(v.sum().item() for k, v in sd.items() if k not in ("sub", "div"))
    assert len(state) == len(carried) and sorted(v.sum().item() for v in state.values()) == carried
    # --model FILE.ckpt goes through the same converter (registered for the suffix)
    loaded = load(str(tmp_path / "tiny.ckpt")).net.state_dict()
    assert loaded.keys() == state.keys() and all(torch.equal(loaded[k], state[k]) for k in state)


@pytest.mark.parametrize(
    ("hp", "state", "message"),
    [
        ({"mode": 2}, {}, r"mode=2 init_q=False is not supported; supported: arch='diinn', mode=3, init_q=False"),
        ({"init_q": True}, {}, r"mode=3 init_q=True is not supported"),
        ({"arch": "liif"}, {}, r"arch='liif' mode=3"),
        ({}, {"sub": torch.zeros(1, 3, 1, 1)}, r"buffer 'sub' is not 0.5"),
    ],
)
def test_unsupported_diinn_variants_raise_one_line(tmp_path, hp, state, message):
    ckpt = _official_diinn(**hp)
    ckpt["state_dict"] |= state
    torch.save(ckpt, tmp_path / "x.ckpt")
    with pytest.raises(RegistryError, match=message) as info:
        read_checkpoint(tmp_path / "x.ckpt")
    assert "\n" not in str(info.value) and "robotic-vision-lab/DIINN layout" in str(info.value)


def test_unknown_layout_lists_both(tmp_path):
    torch.save({"state_dict": {"model.conv.weight": torch.zeros(1)}}, tmp_path / "other.ckpt")
    with pytest.raises(
        RegistryError, match=r"unknown checkpoint layout; known: yinboc/liif .*; robotic-vision-lab/DIINN"
    ):
        read_checkpoint(tmp_path / "other.ckpt")
