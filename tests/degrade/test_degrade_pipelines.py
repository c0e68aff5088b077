"""Degradation pipelines (classical, bsrgan, realesrgan): records, replay, per-sample randomness, any scale, CLI."""

import json
import math

import click
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from PIL import Image

from anyres.cli.degrade import degrade_command
from anyres.degrade import PIPELINES, get_pipeline, lr_size
from anyres.degrade.base import Draw
from anyres.degrade.bsrgan import STEPS, sample_order
from anyres.degrade.steps import apply_block_sample
from anyres.errors import AnyresError, ConfigError, RegistryError
from anyres.ops.filtering import filter2d
from anyres.ops.kernels import gaussian_kernel

NAMES = sorted(PIPELINES)


pytestmark = pytest.mark.usefixtures("one_thread")


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _hr(b=4, h=32, w=32, seed=0):
    """Smooth random RGB images in [0, 1]: random 8x8 fields upsampled bilinearly (content for JPEG to chew)."""
    g = _gen(seed)
    coarse = torch.rand((b, 3, 8, 8), generator=g)
    return F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False).clamp(0, 1)


def _roundtrip(records):
    return json.loads(json.dumps(records))


# ---------------------------------------------------------------------------------------------------------
# records and replay


@pytest.mark.parametrize("name", NAMES)
def test_records_are_plain_json_and_replay_bit_identically(name):
    pipe = get_pipeline(name)
    hr = _hr()
    records = pipe.sample(4, _gen(1), scale=4, hr_size=(32, 32))
    loaded = _roundtrip(records)
    assert loaded == records  # no tuples, tensors or NaN anywhere
    lr = pipe.apply(hr, records)
    assert torch.equal(pipe.apply(hr, loaded), lr)
    for r in records:
        assert r["pipeline"] == name and r["hr_size"] == [32, 32] and r["lr_size"] == [8, 8] and r["scale"] == 4.0


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_output_and_different_seed_different_output(name):
    pipe = get_pipeline(name)
    hr = _hr()
    a, rec_a = pipe(hr, _gen(7), scale=3)
    b, rec_b = pipe(hr, _gen(7), scale=3)
    c, rec_c = pipe(hr, _gen(8), scale=3)
    assert rec_a == rec_b and torch.equal(a, b)
    assert rec_a != rec_c and not torch.equal(a, c)


@pytest.mark.parametrize("name", NAMES)
def test_samples_of_one_batch_differ_and_batch_equals_per_sample(name):
    pipe = get_pipeline(name)
    hr = _hr(4).mean(dim=0, keepdim=True).expand(4, 3, 32, 32).contiguous()  # one image, four times
    records = pipe.sample(4, _gen(2), scale=2, hr_size=(32, 32))
    lr = pipe.apply(hr, records)
    for i in range(4):
        for j in range(i + 1, 4):
            assert records[i] != records[j]
            assert not torch.equal(lr[i], lr[j])
    for i in range(4):
        assert torch.equal(pipe.apply(hr[i : i + 1], records[i : i + 1]), lr[i : i + 1])
    # A sample's output does not depend on its neighbours in the batch either.
    assert torch.equal(pipe.apply(hr[[2, 0]], [records[2], records[0]]), lr[[2, 0]])


def test_noise_seeds_make_replay_independent_of_the_batch():
    pipe = get_pipeline("realesrgan")
    hr = _hr(2)
    records = pipe.sample(2, _gen(3), scale=2, hr_size=(32, 32))
    assert all(isinstance(r["noise1"]["seed"], int) and isinstance(r["noise2"]["seed"], int) for r in records)
    assert records[0]["noise1"]["seed"] != records[1]["noise1"]["seed"]
    # The second sample alone, out of its batch, replays to the same pixels.
    assert torch.equal(pipe.apply(hr[1:], records[1:]), pipe.apply(hr, records)[1:])


# ---------------------------------------------------------------------------------------------------------
# any scale


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("scale", [2, 3, 4, 2.5])
def test_output_size_follows_the_rounding_rule_and_values_stay_in_range(name, scale):
    pipe = get_pipeline(name)
    h, w = 32, 27
    expected = [max(1, math.floor(h / scale + 0.5)), max(1, math.floor(w / scale + 0.5))]
    assert lr_size((h, w), scale) == expected
    hr = _hr(2, h, w)
    lr, records = pipe(hr, _gen(4), scale=scale)
    assert list(lr.shape) == [2, 3, *expected]
    assert lr.dtype == hr.dtype
    assert lr.min() >= 0 and lr.max() <= 1
    assert all(r["lr_size"] == expected for r in records)


def test_lr_size_rule_examples():
    assert lr_size((32, 32), 2.5) == [13, 13]  # 12.8 rounds to 13
    assert lr_size((5, 7), 2) == [3, 4]  # halves round up
    assert lr_size((3, 3), 100) == [1, 1]  # never empty
    assert lr_size((30, 40), 1) == [30, 40]


@pytest.mark.parametrize("name", NAMES)
def test_scale_below_one_and_unknown_options_are_user_errors(name):
    pipe = get_pipeline(name)
    with pytest.raises(ConfigError, match="scale"):
        pipe.sample(1, _gen(0), scale=0.5, hr_size=(16, 16))
    with pytest.raises(ConfigError, match="unknown"):
        get_pipeline(name, no_such_option=1)


def test_unknown_pipeline_and_bad_ranges_are_user_errors():
    with pytest.raises(RegistryError, match="classical, bsrgan, realesrgan"):
        get_pipeline("esrgan")
    assert issubclass(RegistryError, AnyresError)
    with pytest.raises(ConfigError, match="low must be <= high"):
        get_pipeline("bsrgan", noise_level=(20, 10))
    with pytest.raises(ConfigError, match="probability"):
        get_pipeline("realesrgan", final_sinc_prob=1.5)
    with pytest.raises(ConfigError, match="sum to 1"):
        get_pipeline("realesrgan", resize_prob=(0.5, 0.5, 0.5))


def _blob(h=48, w=48, x0=22.4, y0=25.1, sigma=4.0):
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    blob = 0.2 + 0.6 * torch.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * sigma**2))
    return blob.float().expand(4, 3, h, w).contiguous()


def _centroid(img, background=0.2):
    wgt = (img.mean(dim=1) - background).clamp_min(0)  # (B, h, w)
    h, w = wgt.shape[-2:]
    ys = torch.arange(h, dtype=wgt.dtype).view(h, 1)
    xs = torch.arange(w, dtype=wgt.dtype).view(1, w)
    total = wgt.sum(dim=(1, 2))
    return (wgt * xs).sum(dim=(1, 2)) / total, (wgt * ys).sum(dim=(1, 2)) / total


_NOISELESS = {
    "classical": dict(noise_prob=0.0),
    "bsrgan": dict(
        noise_level=(0, 0),
        jpeg_range=(100, 100),
        final_jpeg_range=(100, 100),
        camera_prob=0.0,
        resize_modes=("bilinear", "bicubic"),
    ),
    "realesrgan": dict(
        gaussian_noise_prob=1.0,
        gaussian_noise_prob2=1.0,
        noise_range=(0, 0),
        noise_range2=(0, 0),
        jpeg_range=(100, 100),
        jpeg_range2=(100, 100),
        resize_modes=("bilinear", "bicubic"),
    ),
}


_NOISELESS["bsrgan-nearest"] = dict(_NOISELESS["bsrgan"], nearest_prob=1.0)


@pytest.mark.parametrize("variant", sorted(_NOISELESS))
@pytest.mark.parametrize("scale", [2, 3, 2.5])
def test_lr_pixels_line_up_with_hr_pixels(variant, scale):
    # Documented alignment: LR pixel m is centred on HR coordinate (m + 0.5) * H / h - 0.5. Every blur is
    # point-symmetric and every resize maps extent to extent, so a blob's centroid must land there.
    x0, y0 = 22.4, 25.1
    hr = _blob(x0=x0, y0=y0)
    pipe = get_pipeline(variant.split("-")[0], **_NOISELESS[variant])
    lr, records = pipe(hr, _gen(5), scale=scale)
    h, w = lr.shape[-2:]
    cx, cy = _centroid(lr.double())
    expect_x = (x0 + 0.5) * w / 48 - 0.5
    expect_y = (y0 + 0.5) * h / 48 - 0.5
    torch.testing.assert_close(cx, torch.full_like(cx, expect_x), atol=0.12, rtol=0)
    torch.testing.assert_close(cy, torch.full_like(cy, expect_y), atol=0.12, rtol=0)


@pytest.mark.parametrize("s", [2, 3, 4])
def test_bsrgan_nearest_downsampling_is_the_shifted_kernel_then_stride_decimation(s):
    # The reference shifts its Gaussian by (s - 1) / 2 with bilinear weights and keeps every s-th pixel from 0.
    # In filter2d's correlation convention the shift is towards +x / +y (filtering.py's docstring).
    g = _gen(6)
    x = torch.rand((1, 3, 8 * s, 8 * s), generator=g, dtype=torch.float64)
    sigma = 0.9
    k = gaussian_kernel(21, torch.tensor([sigma], dtype=torch.float64))
    t = (s - 1) / 2
    lo = math.floor(t)
    f = t - lo
    kp = F.pad(k, (4, 4, 4, 4))  # room to move
    shifted = torch.zeros_like(kp)
    for dy, wy in ((lo, 1 - f), (lo + 1, f)):
        for dx, wx in ((lo, 1 - f), (lo + 1, f)):
            shifted += wy * wx * torch.roll(kp, shifts=(dy, dx), dims=(-2, -1))
    reference = filter2d(x, shifted)[..., ::s, ::s]
    ours = apply_block_sample(x, {"sigma": sigma, "kernel_size": 21, "size": [8, 8]})
    # Away from the borders (where the reference's kernel clamping and our reflection differ) they agree.
    torch.testing.assert_close(ours[..., 2:-2, 2:-2], reference[..., 2:-2, 2:-2], atol=1e-12, rtol=0)
    wrong_sign = filter2d(x, torch.roll(shifted, shifts=(-2 * lo - 1, -2 * lo - 1), dims=(-2, -1)))[..., ::s, ::s]
    assert (wrong_sign - ours)[..., 2:-2, 2:-2].abs().max() > 1e-3  # the opposite shift would be caught


# ---------------------------------------------------------------------------------------------------------
# sampling distributions (cheap: no images)


def test_bsrgan_orders_cover_every_admissible_permutation():
    draw = Draw(_gen(0))
    orders = {tuple(sample_order(draw)) for _ in range(30000)}
    assert all(o.index("down1") < o.index("down2") for o in orders)
    assert all(sorted(o) == sorted(STEPS) for o in orders)
    assert len(orders) == math.factorial(7) // 2  # all 2520 orders with down1 before down2


def test_bsrgan_records_shuffle_per_sample_and_follow_the_paper_blurs():
    records = get_pipeline("bsrgan").sample(1000, _gen(1), scale=4, hr_size=(32, 32))
    orders = [tuple(r["order"]) for r in records]
    assert all(o.index("down1") < o.index("down2") for o in orders)
    assert len(set(orders)) > 700  # ~826 distinct expected among 1000 uniform draws of 2520
    for step in STEPS:  # every step visits every admissible position
        positions = {o.index(step) for o in orders}
        assert positions == set(range(7)) - ({6} if step == "down1" else {0} if step == "down2" else set())
    assert all(r["blur1"]["kind"] == "iso" and r["blur2"]["kind"] == "bsrgan_aniso" for r in records)
    halved = sum(r["halve"] is not None for r in records)
    nearest = sum(r["down1"]["kind"] == "nearest" for r in records)
    camera = sum(r["camera"] is not None for r in records)
    jpeg = sum(r["jpeg"] is not None for r in records)
    assert 180 < halved < 320 and 180 < nearest < 320 and 180 < camera < 320 and 850 < jpeg < 950
    kinds = [r["noise"]["kind"] for r in records]
    assert (
        330 < kinds.count("color") < 470 and 330 < kinds.count("gray") < 470 and 130 < kinds.count("correlated") < 270
    )
    levels = {r["noise"]["level"] for r in records}
    assert levels == set(range(2, 26))
    # x4 ranges, or x2 ranges after the halving step (paper: [0.1, 2 + 0.2 s] and [0.5, 4 + s]).
    for r in records:
        s = 2.0 if r["halve"] else 4.0
        assert 0.1 <= r["blur1"]["sigma"] <= 2 + 0.2 * s
        assert all(0.5 <= v <= 4 + s for v in r["blur2"]["var"])
        assert 7 <= r["blur1"]["size"] <= 21 and r["blur1"]["size"] % 2 == 1
    # The reference code's coin per blur is available as an option.
    coin = get_pipeline("bsrgan", blur_coin=True).sample(400, _gen(2), scale=2, hr_size=(16, 16))
    pairs = {(r["blur1"]["kind"], r["blur2"]["kind"]) for r in coin}
    assert pairs == {(a, b) for a in ("iso", "bsrgan_aniso") for b in ("iso", "bsrgan_aniso")}


def test_bsrgan_halving_only_from_the_minimum_scale():
    pipe = get_pipeline("bsrgan")
    assert all(r["halve"] is None for r in pipe.sample(200, _gen(3), scale=3, hr_size=(32, 32)))
    assert any(r["halve"] is not None for r in pipe.sample(200, _gen(3), scale=5.5, hr_size=(32, 32)))


def test_realesrgan_draws_every_choice_per_sample():
    records = get_pipeline("realesrgan").sample(600, _gen(4), scale=4, hr_size=(32, 32))
    first = sum(r["final_order"] == ["resize", "sinc", "jpeg"] for r in records)
    assert 240 < first < 360  # both final orders, each about half the time
    assert {tuple(r["final_order"]) for r in records} == {("resize", "sinc", "jpeg"), ("jpeg", "resize", "sinc")}
    # Within single batches of 8 the choices the reference shares per batch still vary.
    batches = [records[i : i + 8] for i in range(0, 600, 8)]
    assert any(len({r["resize1"]["kind"] for r in b}) > 1 for b in batches)
    assert any(len({r["noise1"]["kind"] == "poisson" for r in b}) > 1 for b in batches)
    assert any(len({r["blur2"] is None for r in b}) > 1 for b in batches)
    kinds = [r["blur1"]["kind"] for r in records]
    assert 0.04 < kinds.count("sinc") / 600 < 0.16
    assert 0.35 < kinds.count("iso") / 600 < 0.50  # 0.45 of the 0.9 non-sinc draws ~ 0.405
    assert 0.7 < sum(r["final_sinc"] is not None for r in records) / 600 < 0.9
    for r in records:
        if r["blur1"]["kind"] == "sinc":
            lo = math.pi / 3 if r["blur1"]["size"] < 13 else math.pi / 5
            assert lo <= r["blur1"]["cutoff"] <= math.pi
        if r["blur1"]["kind"].startswith("plateau"):
            assert 1.0 <= r["blur1"]["beta"] <= 2.0
        assert 30 <= r["jpeg1"]["quality"] <= 95 and isinstance(r["jpeg1"]["quality"], int)
        if r["resize1"]["kind"] == "down":
            assert 0.15 <= r["resize1"]["factor"] <= 1.0


def test_configured_ranges_are_respected():
    rec = get_pipeline(
        "bsrgan", noise_level=(10, 10), jpeg_prob=1.0, jpeg_range=(50, 50), camera_prob=0.0, nearest_prob=1.0
    ).sample(20, _gen(5), scale=2, hr_size=(16, 16))
    assert all(r["noise"]["level"] == 10 and r["jpeg"] == {"quality": 50} and r["camera"] is None for r in rec)
    assert all(r["down1"]["kind"] == "nearest" for r in rec)
    rec = get_pipeline(
        "realesrgan",
        gaussian_noise_prob=1.0,
        noise_range=(5, 5),
        gray_noise_prob=1.0,
        second_blur_prob=0.0,
        final_resize_first_prob=0.0,
    ).sample(20, _gen(6), scale=2, hr_size=(16, 16))
    assert all(r["noise1"] == {"kind": "gray", "level": 5.0, "seed": r["noise1"]["seed"]} for r in rec)
    assert all(r["blur2"] is None and r["final_order"] == ["jpeg", "resize", "sinc"] for r in rec)
    rec = get_pipeline(
        "classical", sigma=(1.5, 1.5), iso_prob=1.0, noise_level=(3, 3), jpeg_prob=1.0, jpeg_range=(70, 70)
    ).sample(5, _gen(7), scale=3, hr_size=(16, 16))
    assert all(r["blur"]["sigma"] == 1.5 and r["blur"]["size"] == 11 for r in rec)  # 2 ceil(3 * 1.5) + 1
    assert all(r["noise"]["level"] == 3.0 and r["jpeg"] == {"quality": 70} for r in rec)
    # Scale-dependent bounds: (c, k) means c + k * scale.
    rec = get_pipeline("classical", sigma=(0.0, (1.0, 0.5)), iso_prob=1.0).sample(
        200, _gen(8), scale=6, hr_size=(16, 16)
    )
    assert max(r["blur"]["sigma"] for r in rec) <= 4.0 and max(r["blur"]["sigma"] for r in rec) > 3.5


def test_classical_without_noise_is_blur_then_bicubic():
    from anyres.ops.resize import imresize

    pipe = get_pipeline("classical", sigma=(0.0, 0.0), noise_prob=0.0, quantize=False)
    hr = _hr(2)
    lr = pipe.apply(hr, pipe.sample(2, _gen(9), scale=2.5, hr_size=(32, 32)))
    torch.testing.assert_close(lr, imresize(hr, size=(13, 13)).clamp(0, 1), atol=1e-6, rtol=0)


def test_apply_checks_its_inputs():
    pipe = get_pipeline("classical")
    records = pipe.sample(2, _gen(0), scale=2, hr_size=(16, 16))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        pipe.apply(torch.rand(2, 1, 16, 16), records)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        pipe.apply(torch.rand(2, 3, 16, 16) * 2, records)
    with pytest.raises(ValueError, match="HR size"):
        pipe.apply(torch.rand(2, 3, 16, 18), records)
    with pytest.raises(ValueError, match="not a 'bsrgan' record"):
        get_pipeline("bsrgan").apply(torch.rand(2, 3, 16, 16), records)


# ---------------------------------------------------------------------------------------------------------
# command line


def _cli():
    group = click.Group()
    group.add_command(degrade_command)
    runner = CliRunner()
    return lambda *args: runner.invoke(group, ["degrade", *[str(a) for a in args]])


def _write_images(folder):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ["a.png", "b.png", "c.png"]:
        small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
        Image.fromarray(small).resize((32, 24), Image.BILINEAR).save(folder / name)
    (folder / "broken.png").write_bytes(b"not a png at all")
    return folder


def _pixels(path):
    return np.asarray(Image.open(path))


def test_cli_writes_lr_images_and_params_and_replays_bit_identically(tmp_path):
    run = _cli()
    src = _write_images(tmp_path / "hr")
    out, params = tmp_path / "lr", tmp_path / "params.json"
    res = run(src, "--pipeline", "bsrgan", "--scale", 2.5, "--seed", 3, "--out-dir", out, "--params-out", params)
    assert res.exit_code == 1, res.output  # broken.png fails...
    assert "broken.png" in res.output and res.output.count("anyres: error:") == 1
    for name in ("a", "b", "c"):  # ...and the others are written
        assert Image.open(out / f"{name}.png").size == (13, 10)  # round(32 / 2.5) x round(24 / 2.5)
    data = json.loads(params.read_text())
    assert data["pipeline"] == "bsrgan" and data["scale"] == 2.5 and data["seed"] == 3
    assert sorted(data["images"]) == ["a.png", "b.png", "c.png"]
    assert data["images"]["a.png"]["hr_size"] == [24, 32] and data["images"]["a.png"]["lr_size"] == [10, 13]
    assert data["images"]["a.png"] != data["images"]["b.png"]

    good = [src / "a.png", src / "b.png", src / "c.png"]
    res = run(*good, "--replay", params, "--out-dir", tmp_path / "replay")
    assert res.exit_code == 0, res.output
    res = run(*good, "--pipeline", "bsrgan", "--scale", 2.5, "--seed", 3, "--out-dir", tmp_path / "again")
    assert res.exit_code == 0, res.output
    res = run(*good, "--pipeline", "bsrgan", "--scale", 2.5, "--seed", 4, "--out-dir", tmp_path / "other")
    assert res.exit_code == 0, res.output
    for name in ("a.png", "b.png", "c.png"):
        assert (tmp_path / "replay" / name).read_bytes() == (out / name).read_bytes()
        assert (tmp_path / "again" / name).read_bytes() == (out / name).read_bytes()
    assert any(not np.array_equal(_pixels(tmp_path / "other" / n), _pixels(out / n)) for n in ("a.png", "b.png"))

    # An image's parameters depend on the seed and its name only, not on the other inputs.
    res = run(src / "b.png", "--pipeline", "bsrgan", "--scale", 2.5, "--seed", 3, "-o", tmp_path / "b_alone.png")
    assert res.exit_code == 0, res.output
    assert np.array_equal(_pixels(tmp_path / "b_alone.png"), _pixels(out / "b.png"))


def test_cli_user_mistakes(tmp_path):
    run = _cli()
    src = _write_images(tmp_path / "hr")
    res = run(src / "a.png", "--scale", 2, "-o", tmp_path / "x.png")
    assert res.exit_code == 1 and isinstance(res.exception, AnyresError) and "--pipeline" in str(res.exception)
    res = run(src / "a.png", "--pipeline", "nope", "--scale", 2, "-o", tmp_path / "x.png")
    assert isinstance(res.exception, AnyresError) and "classical" in str(res.exception)
    res = run(src / "a.png", "--pipeline", "classical", "--scale", 0.5, "-o", tmp_path / "x.png")
    assert isinstance(res.exception, AnyresError) and ">= 1" in str(res.exception)
    res = run(src, "--pipeline", "classical", "--scale", 2, "-o", tmp_path / "x.png")
    assert isinstance(res.exception, AnyresError) and "exactly one input" in str(res.exception)
    # Existing outputs are kept unless --overwrite; the replay of a missing name is one error line.
    out = tmp_path / "lr"
    assert (
        run(
            src / "a.png",
            "--pipeline",
            "classical",
            "--scale",
            2,
            "--out-dir",
            out,
            "--params-out",
            tmp_path / "p.json",
        ).exit_code
        == 0
    )
    res = run(src / "a.png", "--pipeline", "classical", "--scale", 2, "--out-dir", out)
    assert res.exit_code == 1 and "already exists" in res.output
    res = run(src / "a.png", src / "b.png", "--replay", tmp_path / "p.json", "--out-dir", tmp_path / "r")
    assert res.exit_code == 1 and "no record for 'b.png'" in res.output and (tmp_path / "r" / "a.png").exists()


def test_public_degrade_image_returns_a_replayable_record(tmp_path):
    import anyres
    from anyres.io import write_image

    hr = torch.rand(1, 3, 40, 36, generator=torch.Generator().manual_seed(2))
    lr, record = anyres.degrade_image(hr, "bsrgan", 3.0, seed=4)
    assert lr.shape == (1, 3, 13, 12) and record["pipeline"] == "bsrgan" and record["scale"] == 3.0
    assert torch.equal(get_pipeline("bsrgan").apply(hr, [record]), lr)
    again, rec2 = anyres.degrade_image(hr[0], "bsrgan", 3.0, seed=4)
    assert torch.equal(again, lr) and rec2 == record
    assert not torch.equal(anyres.degrade_image(hr, "bsrgan", 3.0, seed=5)[0], lr)
    write_image(tmp_path / "g.png", hr[:, :1])
    gray_lr, _ = anyres.degrade_image(tmp_path / "g.png", "classical", 2.0, seed=0, noise_prob=0.0)
    assert gray_lr.shape == (1, 3, 20, 18)
    assert torch.equal(gray_lr[:, 0], gray_lr[:, 1]) and torch.equal(gray_lr[:, 1], gray_lr[:, 2])
    with pytest.raises(ValueError, match=r"shape \(2, 3, 40, 36\)"):
        anyres.degrade_image(torch.cat([hr, hr]), "bsrgan", 3.0)
