"""Degradation gallery: layout size, tiles equal to replayed records, record summaries, determinism."""

import copy
import json
import re

import numpy as np
import pytest
import torch

from anyres.degrade import get_pipeline
from anyres.degrade.gallery import TEXT_LINES, make_gallery, summarise
from anyres.ops.resize import imresize

NAMES = ("classical", "bsrgan", "realesrgan")
# Explicit geometry, so the expected positions below follow from the documented formula alone.
LAYOUT = {"text_width": 100, "text_height": 50, "label_width": 80, "pad": 4, "legend": False}


pytestmark = pytest.mark.usefixtures("one_thread")


def synthetic_hr(h: int = 40, w: int = 56) -> torch.Tensor:
    """Gradients, a checkerboard and a little texture, on the 8-bit grid, as a (1, 3, h, w) crop."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    checker = ((torch.arange(h)[:, None] // 4 + torch.arange(w)[None, :] // 4) % 2).float()
    texture = torch.rand(h, w, generator=torch.Generator().manual_seed(7))
    img = torch.stack([0.2 + 0.6 * xx, 0.3 + 0.4 * checker, 0.1 + 0.5 * yy + 0.3 * texture])[None]
    return (img.clamp(0, 1) * 255).round() / 255


def as_array(image) -> np.ndarray:
    return np.asarray(image.convert("RGB"))


def tile_box(
    row: int, col: int, H: int, W: int, text_width: int, text_height: int, label_width: int, pad: int, **_
) -> tuple[int, int]:
    """Top-left (x, y) of a tile, from the layout documented in ``anyres.degrade.gallery``."""
    col_w = max(W, text_width)
    return (pad + label_width + col * (col_w + pad) + (col_w - W) // 2, pad + row * (H + text_height + pad))


def expected_tile(name: str, hr: torch.Tensor, record: dict) -> np.ndarray:
    """Re-derive a tile: apply the record, nearest-upscale to the HR size, round to 8 bits."""
    lr = get_pipeline(name).apply(hr, [record])
    up = imresize(lr, size=tuple(hr.shape[-2:]), kernel="nearest")
    return (up[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


@pytest.mark.parametrize("H, W, n", [(40, 56, 3), (48, 120, 2)])
def test_gallery_size_follows_layout(H, W, n):
    hr = synthetic_hr(H, W)
    image = make_gallery(hr, n=n, scale=4.0, seed=0, **LAYOUT)
    col_w = max(W, LAYOUT["text_width"])
    pad = LAYOUT["pad"]
    width = pad + LAYOUT["label_width"] + (n + 1) * (col_w + pad)
    height = pad + len(NAMES) * (H + LAYOUT["text_height"] + pad)
    assert image.size == (width, height)
    assert image.mode == "RGB"

    # The legend only adds rows below the grid.
    with_legend = make_gallery(hr, pipelines=("classical",), n=1, **{**LAYOUT, "legend": True})
    without = make_gallery(hr, pipelines=("classical",), n=1, **LAYOUT)
    assert with_legend.width == without.width and with_legend.height > without.height
    assert np.array_equal(as_array(with_legend)[: without.height], as_array(without))


def test_tiles_equal_replayed_records():
    H, W, n, seed, scale = 40, 56, 3, 11, 4.0
    hr = synthetic_hr(H, W)
    image, records = make_gallery(hr, n=n, scale=scale, seed=seed, return_records=True, **LAYOUT)
    pixels = as_array(image)
    assert list(records) == list(NAMES)
    hr_u8 = (hr[0] * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    for row, name in enumerate(NAMES):
        # The row's records are exactly n draws from one generator seeded with `seed`.
        fresh = get_pipeline(name).sample(n, torch.Generator().manual_seed(seed), scale=scale, hr_size=(H, W))
        assert records[name] == fresh
        x, y = tile_box(row, 0, H, W, **LAYOUT)
        assert np.array_equal(pixels[y : y + H, x : x + W], hr_u8), f"{name}: HR tile"
        for k in range(n):
            x, y = tile_box(row, k + 1, H, W, **LAYOUT)
            tile = pixels[y : y + H, x : x + W]
            want = expected_tile(name, hr, records[name][k])
            assert np.array_equal(tile, want), f"{name}: tile {k + 1} differs from the replayed record"
            assert not np.array_equal(tile, hr_u8)
            # Nearest display at x4: every 4x4 block is one LR pixel.
            assert np.array_equal(tile[0], tile[3]) and np.array_equal(tile[:, 0], tile[:, 3])
            # The summary is drawn under the tile (dark text on the white band).
            band = pixels[y + H : y + H + LAYOUT["text_height"], x : x + W]
            assert band.min() < 100
    assert json.loads(json.dumps(records)) == records  # can be written beside the PNG as it is


def _mentions(number: int, lines: list[str]) -> int:
    """How often ``number`` appears as a whole number (not inside another number or a decimal)."""
    return len(re.findall(rf"(?<![\d.]){number}(?![\d.])", "\n".join(lines)))


@pytest.mark.parametrize(
    "name, overrides, fields",
    [
        ("classical", {"jpeg_prob": 1.0}, ["jpeg"]),
        ("bsrgan", {"jpeg_prob": 1.0}, ["jpeg", "final_jpeg"]),
        ("realesrgan", {}, ["jpeg1", "final_jpeg"]),
    ],
)
def test_summary_mentions_jpeg_quality(name, overrides, fields):
    pipe = get_pipeline(name, **overrides)
    records = pipe.sample(4, torch.Generator().manual_seed(3), scale=4.0, hr_size=(40, 56))
    for record in records:
        for field in fields:
            assert record[field] is not None
            # The sampled quality is mentioned as it is...
            assert _mentions(record[field]["quality"], summarise(record)) >= 1, (field, summarise(record))
            # ...and the mention follows the record: two distinctive values, each shown only when present.
            for q, other in ((97, 3), (3, 97)):
                edited = copy.deepcopy(record)
                edited[field]["quality"] = q
                lines = summarise(edited)
                baseline = copy.deepcopy(record)
                baseline[field]["quality"] = other
                assert _mentions(q, lines) > _mentions(q, summarise(baseline)), (field, lines)


def test_summary_shape_for_every_layout():
    for name in NAMES:
        for record in get_pipeline(name).sample(30, torch.Generator().manual_seed(1), scale=3.0, hr_size=(48, 48)):
            lines = summarise(record)
            assert 1 <= len(lines) <= TEXT_LINES
            assert all(isinstance(s, str) and s.strip() for s in lines)
    classical = get_pipeline("classical").sample(1, torch.Generator().manual_seed(0), scale=4.0, hr_size=(40, 40))[0]
    assert classical["jpeg"] is None
    assert any("jpeg -" in s for s in summarise(classical))
    with pytest.raises(ValueError, match="pipeline"):
        summarise({"pipeline": "nope"})


def test_same_seed_same_image_other_seed_differs():
    hr = synthetic_hr(32, 32)
    a = as_array(make_gallery(hr, n=2, seed=5, **LAYOUT))
    b = as_array(make_gallery(hr, n=2, seed=5, **LAYOUT))
    c = as_array(make_gallery(hr, n=2, seed=6, **LAYOUT))
    assert np.array_equal(a, b)
    assert a.shape == c.shape and not np.array_equal(a, c)


def test_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\(1, 3, H, W\)"):
        make_gallery(torch.rand(2, 3, 16, 16))
    with pytest.raises(ValueError, match="n must be"):
        make_gallery(torch.rand(1, 3, 16, 16), n=0)
