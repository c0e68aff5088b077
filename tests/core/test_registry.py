"""Registries and the one loader: names, discovery of weights folders, typed options, kinds."""

import json

import pytest
import torch

import anyres
import anyres.hub
from anyres.enhancement.unet import UNetEnhancer
from anyres.errors import ConfigError, RegistryError
from anyres.hub import save_network
from anyres.registry import CHECKPOINTS, ENHANCERS, UPSCALERS, Entry, Registry, load
from anyres.sr.liif import LIIF
from anyres.sr.pretrained import load_upscaler
from anyres.sr.render import LIIFUpscaler, RenderOptions
from conftest import tiny_liif_config


def test_a_registry_is_a_mapping_of_names_that_refuses_duplicates_and_lists_valid_names():
    reg = Registry("widget", ordered=True)
    reg.register("b", "the second letter")(lambda: "B")
    reg.register("a", "the first letter", role="vowel")(lambda: "A")
    assert list(reg) == ["b", "a"] and reg.names("vowel") == ["a"] and reg.build("a") == "A"
    with pytest.raises(RegistryError, match="widget 'a' is already registered"):
        reg.register("a", "again")(lambda: None)
    with pytest.raises(RegistryError, match="unknown widget 'c'; available: b, a"):
        reg.get("c")
    assert list(Registry("widget") or ["empty"]) == ["empty"]  # an empty registry is falsy, like a dict


@pytest.fixture
def weights_dir(tmp_path, monkeypatch):
    root = tmp_path / "weights"
    monkeypatch.setattr(anyres.hub, "WEIGHTS_DIR", root)
    return root


def test_a_weights_folder_dropped_in_is_discovered_by_its_arch(weights_dir):
    torch.manual_seed(0)
    save_network(
        LIIF(tiny_liif_config()), weights_dir / "tiny-sr", extra={"name": "tiny-sr", "description": "a tiny LIIF"}
    )
    save_network(UNetEnhancer(width=2, levels=2), weights_dir / "tiny-en", extra={"description": "a tiny U-Net"})
    (weights_dir / "odd").mkdir()
    (weights_dir / "odd" / "config.json").write_text(json.dumps({"arch": "edsr-baseline"}))  # no model role
    assert "tiny-sr" in UPSCALERS and "tiny-sr" not in ENHANCERS and "odd" not in UPSCALERS
    assert ENHANCERS.names() == ["tiny-en"] and ENHANCERS["tiny-en"].description == "a tiny U-Net"
    assert UPSCALERS["tiny-sr"].available and "liif" not in UPSCALERS  # the real shipped folders are elsewhere
    up = load_upscaler("tiny-sr", mode="exact")
    assert isinstance(up, LIIFUpscaler) and up.name == "tiny-sr" and up.options.mode == "exact"
    assert isinstance(load("tiny-en"), UNetEnhancer) and isinstance(load("tiny-sr"), LIIFUpscaler)
    sr = anyres.upscale(torch.rand(1, 3, 6, 5), 2, model="tiny-sr", tile=None)
    assert sr.shape == (1, 3, 12, 10)
    (weights_dir / "tiny-sr" / "model.safetensors").unlink()  # the card ships, the weights do not
    assert not UPSCALERS["tiny-sr"].available
    with pytest.raises(RegistryError, match="'tiny-sr': its weights are not in this installation"):
        load_upscaler("tiny-sr")


def test_a_folder_of_another_kind_is_refused_by_kind(tmp_path):
    folder = save_network(UNetEnhancer(width=2, levels=2), tmp_path / "en")
    with pytest.raises(RegistryError, match="'unet-enhancer' model is not an upscaling model"):
        load_upscaler(folder)
    with pytest.raises(RegistryError, match="'bicubic' is an upscaling model; enhancement needs"):
        load("bicubic", kind=ENHANCERS)


def test_render_options_are_typed_and_unknown_options_fail_clearly():
    assert RenderOptions.from_kwargs(tile=None, seed=2) == RenderOptions(tile=None, seed=2)
    with pytest.raises(
        ConfigError,
        match=r"unknown upscaler option 'tiles'; valid: mode, tile, chunk, seed, "
        r"progress",
    ):
        load_upscaler("bicubic", tiles=64)
    with pytest.raises(ConfigError, match="unknown upscaler option 'mdoe'"):
        anyres.upscale(torch.rand(1, 3, 4, 4), 2, model="bicubic", mdoe="exact")
    with pytest.raises(ConfigError, match="unknown render mode 'fastest'"):
        RenderOptions(mode="fastest")
    with pytest.raises(ConfigError, match="enhancement models take no options"):
        load("tiny-or-not", kind=ENHANCERS, mode="exact")
    net = LIIF(tiny_liif_config())
    assert LIIFUpscaler(net, mode="exact", tile=4).options == RenderOptions(mode="exact", tile=4)
    with pytest.raises(ConfigError, match="unknown upscaler option 'tile_size'"):
        LIIFUpscaler(net, tile_size=4)


def test_a_foreign_checkpoint_loads_through_a_registered_converter(tmp_path, monkeypatch):
    folder = save_network(LIIF(tiny_liif_config()), tmp_path / "converted")
    (tmp_path / "model.fake").write_bytes(b"someone else's format")
    with pytest.raises(RegistryError, match="not a model folder"):
        load_upscaler(tmp_path / "model.fake")
    monkeypatch.setitem(CHECKPOINTS._entries, "fake", Entry("fake", lambda path: folder, "a test format", ".fake"))
    assert isinstance(load_upscaler(tmp_path / "model.fake"), LIIFUpscaler)
