"""Synthetic enhancement tasks and the pair sampler (anyres.enhancement.tasks): replay, independence, known values."""

import json
import math

import pytest
import torch

from anyres.enhancement.tasks import TASKS, EnhancePairSampler, LowLightTask, RetouchTask, get_task
from anyres.errors import ConfigError, RegistryError

pytestmark = pytest.mark.usefixtures("one_thread")

NEUTRAL = {
    "retouch": {
        "exposure": (0, 0),
        "cast": (0, 0),
        "gamma": (1, 1),
        "contrast": (1, 1),
        "graduated_count": (0, 0),
        "elliptical_count": (0, 0),
    },
    "lowlight": {"exposure": (0, 0), "gamma": (1, 1), "noise_prob": 0.0},
}


def gen(seed):
    return torch.Generator().manual_seed(seed)


def photo(b=3, h=12, w=16, seed=0):
    """8-bit-valued float images (what a sampler feeds a task)."""
    return torch.randint(0, 256, (b, 3, h, w), generator=gen(seed)).float() / 255.0


def flat(value, h=64, w=64):
    return torch.full((1, 3, h, w), float(value))


def srgb_decode(c):
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def srgb_encode(v):
    return 12.92 * v if v <= 0.0031308 else 1.055 * v ** (1 / 2.4) - 0.055


# ---------------------------------------------------------------------------------------------------------
# Records


@pytest.mark.parametrize("name", TASKS)
def test_records_round_trip_json_and_replay_bit_identically(name):
    task = get_task(name)
    x = photo()
    records = task.sample(3, gen(5))
    loaded = json.loads(json.dumps(records))
    assert loaded == records
    assert all(r["task"] == name and r["format"] == 1 for r in records)
    first = task.apply(x, records)
    assert first.shape == x.shape and first.dtype == x.dtype
    assert torch.equal(first, task.apply(x, loaded))
    assert torch.equal(first, get_task(name).apply(x, loaded))  # the records alone replay, config unused
    assert torch.equal(first, torch.round(first * 255) / 255)  # rounded to 8 bits by default
    assert not torch.equal(first, x)


@pytest.mark.parametrize("name", TASKS)
def test_same_seed_same_records_other_seed_differs(name):
    task = get_task(name)
    assert task.sample(4, gen(1)) == task.sample(4, gen(1))
    assert task.sample(4, gen(1)) != task.sample(4, gen(2))
    x = photo()
    assert not torch.equal(task.apply(x, task.sample(3, gen(1))), task.apply(x, task.sample(3, gen(2))))
    # the samples of one batch differ from one another
    records = task.sample(4, gen(3))
    assert len({json.dumps(r, sort_keys=True) for r in records}) == 4


@pytest.mark.parametrize("name", TASKS)
def test_each_sample_is_its_own_record(name):
    task = get_task(name)
    x = photo(b=4)
    records = task.sample(4, gen(7))
    batch = task.apply(x, records)
    for b in range(4):
        assert torch.equal(batch[b : b + 1], task.apply(x[b : b + 1], records[b : b + 1]))


@pytest.mark.parametrize("name", TASKS)
def test_neutral_ranges_are_the_identity(name):
    task = get_task(name, **NEUTRAL[name])
    x = photo(b=2)
    assert torch.equal(task.apply(x, task.sample(2, gen(0))), x)  # 8-bit input: rounding changes nothing
    raw = torch.rand(2, 3, 9, 7)
    unrounded = get_task(name, **NEUTRAL[name], quantize=False)
    assert torch.equal(unrounded.apply(raw, unrounded.sample(2, gen(0))), raw)


def test_apply_checks_its_inputs():
    task = get_task("retouch")
    records = task.sample(2, gen(0))
    with pytest.raises(ValueError, match="2 records"):
        task.apply(photo(b=3), records)
    with pytest.raises(ValueError, match="not a 'retouch' record"):
        task.apply(photo(b=2), get_task("lowlight").sample(2, gen(0)))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        task.apply(photo(b=2) * 2, records)
    with pytest.raises(ValueError, match=r"\(2, 1, 4, 4\)"):
        task.apply(torch.rand(2, 1, 4, 4), records)


def test_configs_are_validated():
    with pytest.raises(RegistryError, match="retouch, lowlight"):
        get_task("dehaze")
    with pytest.raises(ConfigError, match="valid options"):
        get_task("retouch", exposur=(0, 1))
    with pytest.raises(ConfigError, match="low must be <= high"):
        get_task("retouch", gamma=(1.4, 0.7))
    with pytest.raises(ConfigError, match="> 0"):
        get_task("lowlight", photons=(0, 10))
    with pytest.raises(ConfigError, match="whole numbers"):
        get_task("retouch", elliptical_count=(0, 1.5))
    assert get_task("lowlight", {"exposure": [-2, -2]}).config.exposure == (-2.0, -2.0)


# ---------------------------------------------------------------------------------------------------------
# retouch: known values


def test_retouch_global_steps_known_values():
    base = dict(NEUTRAL["retouch"], quantize=False)
    x = flat(0.5, 4, 4)
    # +1 EV in linear light
    task = get_task("retouch", **{**base, "exposure": (1, 1)})
    want = srgb_encode(2 * srgb_decode(0.5))
    assert task.apply(x, task.sample(1, gen(0)))[0, :, 0, 0].tolist() == pytest.approx([want] * 3, abs=1e-6)
    # white balance: red gain 2^0.3 (and blue, same draw range pinned), green untouched
    task = get_task("retouch", **{**base, "cast": (0.3, 0.3)})
    r = srgb_encode(2**0.3 * srgb_decode(0.5))
    assert task.apply(x, task.sample(1, gen(0)))[0, :, 0, 0].tolist() == pytest.approx([r, 0.5, r], abs=1e-6)
    # gamma, then contrast about mid-grey
    task = get_task("retouch", **{**base, "gamma": (1.2, 1.2), "contrast": (1.1, 1.1)})
    x = flat(0.3, 4, 4)
    want = 0.5 + 1.1 * (0.3**1.2 - 0.5)
    assert task.apply(x, task.sample(1, gen(0)))[0, 0, 0, 0].item() == pytest.approx(want, abs=1e-6)


def test_retouch_highlights_clip_like_a_real_overexposure():
    task = get_task("retouch", **{**NEUTRAL["retouch"], "exposure": (1, 1)})
    assert torch.equal(task.apply(flat(0.9, 2, 2), task.sample(1, gen(0))), flat(1.0, 2, 2))


def test_retouch_graduated_filter_brightens_one_side_only():
    # One horizontal graduated filter at mid-height, +1 EV at full strength below y = 0.6, none above y = 0.4.
    record = {
        "task": "retouch",
        "format": 1,
        "exposure": 0.0,
        "cast": [1.0, 1.0, 1.0],
        "gamma": 1.0,
        "contrast": 1.0,
        "elliptical": [],
        "quantize": False,
        "graduated": [
            {"slope": 0.0, "intercept": 0.5, "offset1": 0.1, "offset2": 0.1, "invert": False, "scale": [2.0, 2.0, 2.0]}
        ],
    }
    x = flat(0.4, 20, 6)
    out = RetouchTask().apply(x, [record])
    top, bottom = out[0, :, :8], out[0, :, 12:]  # rows 0-7: y < 0.4; rows 12-19: y > 0.6
    torch.testing.assert_close(top, x[0, :, :8], rtol=0, atol=1e-6)
    torch.testing.assert_close(bottom, torch.full_like(bottom, srgb_encode(2 * srgb_decode(0.4))), rtol=0, atol=1e-6)
    inverted = RetouchTask().apply(x, [{**record, "graduated": [{**record["graduated"][0], "invert": True}]}])
    torch.testing.assert_close(inverted[0, :, 12:], x[0, :, 12:], rtol=0, atol=1e-6)
    assert (out[0, 0, :, 0].diff() >= -1e-7).all()  # brightness grows monotonically down the image


def test_retouch_elliptical_filter_is_local():
    record = {
        "task": "retouch",
        "format": 1,
        "exposure": 0.0,
        "cast": [1.0, 1.0, 1.0],
        "gamma": 1.0,
        "contrast": 1.0,
        "graduated": [],
        "quantize": False,
        "elliptical": [
            {"centre_x": 0.5, "centre_y": 0.5, "semi_a": 0.2, "semi_b": 0.2, "angle": 0.0, "scale": [0.5, 0.5, 0.5]}
        ],
    }
    x = flat(0.6, 10, 10)
    out = RetouchTask().apply(x, [record])
    torch.testing.assert_close(out[0, :, 0, :], x[0, :, 0, :], rtol=0, atol=1e-6)  # row 0 lies outside
    # the four central pixels sit 0.05 from the centre along x and y: rho = sqrt(2) 0.05 / 0.2, and the
    # linear-light gain is 1 + (0.5 - 1) (1 - rho)
    centre = out[0, 0, 4:6, 4:6]
    rho = math.sqrt(2) * 0.05 / 0.2
    want = srgb_encode((1 - 0.5 * (1 - rho)) * srgb_decode(0.6))
    torch.testing.assert_close(centre, torch.full_like(centre, want), rtol=0, atol=1e-6)


# ---------------------------------------------------------------------------------------------------------
# lowlight


def test_lowlight_is_darker():
    task = get_task("lowlight")
    x = photo(b=4, h=16, w=16)
    out = task.apply(x, task.sample(4, gen(11)))
    means_in, means_out = x.mean(dim=(1, 2, 3)), out.mean(dim=(1, 2, 3))
    assert (means_out < 0.6 * means_in).all()


def test_lowlight_darkening_known_value():
    task = get_task("lowlight", exposure=(-2, -2), gamma=(1.5, 1.5), noise_prob=0.0, quantize=False)
    out = task.apply(flat(0.6, 2, 2), task.sample(1, gen(0)))
    assert out[0, 0, 0, 0].item() == pytest.approx(0.25 * 0.6**1.5, abs=1e-7)


def test_lowlight_noise_is_signal_dependent_poisson_gaussian():
    # Shot noise of variance v / photons plus read noise read^2, at exposure 0 and gamma 1.
    photons, read = 100.0, 0.01
    task = get_task(
        "lowlight", exposure=(0, 0), gamma=(1, 1), photons=(photons, photons), read=(read, read), quantize=False
    )
    for v in (0.1, 0.5):
        x = flat(v, 48, 48)
        out = task.apply(x, task.sample(1, gen(int(v * 10))))
        var = (out - x).var().item()
        assert var == pytest.approx(v / photons + read**2, rel=0.1)
        assert abs((out - x).mean().item()) < 0.01


def test_lowlight_noise_replays_from_its_seed_only():
    task = LowLightTask()
    record = task.sample(1, gen(3))[0]
    x = photo(b=1)
    a = task.apply(x, [record])
    assert torch.equal(a, task.apply(x, [json.loads(json.dumps(record))]))
    other = {**record, "noise": {**record["noise"], "seed": record["noise"]["seed"] + 1}}
    assert not torch.equal(a, task.apply(x, [other]))


# ---------------------------------------------------------------------------------------------------------
# Pair sampler


def _images():
    g = gen(42)
    return [
        torch.randint(0, 256, (3, 40, 50), generator=g, dtype=torch.uint8),
        torch.randint(0, 256, (3, 30, 33), generator=g, dtype=torch.uint8),
        torch.randint(0, 256, (3, 12, 60), generator=g, dtype=torch.uint8),
    ]  # too small for a 24 crop


@pytest.mark.parametrize("name", TASKS)
def test_sampler_shapes_and_replay(name):
    sampler = EnhancePairSampler(_images(), task=name, patch=24)
    degraded, target = sampler.sample(5, gen(9))
    assert degraded.shape == target.shape == (5, 3, 24, 24)
    assert degraded.dtype == target.dtype == torch.float32
    assert 0 <= degraded.min() and degraded.max() <= 1 and not torch.equal(degraded, target)
    again = sampler.sample(5, gen(9))
    assert torch.equal(again[0], degraded) and torch.equal(again[1], target)
    other = sampler.sample(5, gen(10))
    assert not torch.equal(other[1], target)
    samples = sampler.draw(5, gen(9))
    assert json.loads(json.dumps(samples)) == samples
    replayed = sampler.replay(json.loads(json.dumps(samples)))
    assert torch.equal(replayed[0], degraded) and torch.equal(replayed[1], target)
    assert all(s["image"] in (0, 1) for s in samples)  # image 2 cannot hold the crop


def test_sampler_targets_are_flipped_crops():
    images = _images()
    sampler = EnhancePairSampler(images, task={"name": "retouch", "args": NEUTRAL["retouch"]}, patch=16)
    samples = sampler.draw(12, gen(4))
    degraded, target = sampler.replay(samples)
    assert torch.equal(degraded, target)  # a neutral task leaves the crop as it is
    for s, t in zip(samples, target):
        crop = images[s["image"]][:, s["top"] : s["top"] + 16, s["left"] : s["left"] + 16].float() / 255
        if s["hflip"]:
            crop = crop.flip(-1)
        if s["vflip"]:
            crop = crop.flip(-2)
        assert torch.equal(t, crop)
    assert {s["hflip"] for s in samples} == {True, False} and {s["vflip"] for s in samples} == {True, False}


def test_sampler_whole_images_and_errors():
    images = _images()
    sampler = EnhancePairSampler(images, task="lowlight", patch=None, flip=False)
    degraded, target = sampler.replay(
        [{"image": 1, "top": 0, "left": 0, "hflip": False, "vflip": False, "record": sampler.task.sample(1, gen(0))[0]}]
    )
    assert target.shape == (1, 3, 30, 33) and torch.equal(target[0], images[1].float() / 255)
    assert degraded.mean() < target.mean()
    with pytest.raises(ConfigError, match="64x64"):
        EnhancePairSampler(images, patch=64)
    with pytest.raises(ValueError, match="uint8"):
        EnhancePairSampler([torch.rand(3, 30, 30)], patch=8)
    with pytest.raises(RegistryError):
        EnhancePairSampler(images, task="denoise")
