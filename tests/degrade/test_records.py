"""A replayed record is checked field by field before it runs: one line naming the field, never a traceback."""

import copy
import json

import pytest
import torch
from click.testing import CliRunner

from anyres.cli import main
from anyres.degrade import get_pipeline
from anyres.degrade.records import check_record
from anyres.errors import ConfigError
from anyres.io import write_image

HW = (40, 48)


def _record(name, seed=0, scale=2.0):
    return get_pipeline(name).sample(1, torch.Generator().manual_seed(seed), scale=scale, hr_size=HW)[0]


@pytest.mark.parametrize("name", ["classical", "bsrgan", "realesrgan"])
def test_every_sampled_record_passes(name):
    for seed in range(40):
        for scale in (2.0, 3.3, 4.0):
            check_record(_record(name, seed, scale), "a.png", HW)


def _bsrgan_with(step, value):
    for seed in range(200):  # a record whose draw used that step
        r = _record("bsrgan", seed)
        if r.get("noise") and r["noise"].get("kind") == "correlated" and step == "covariance":
            r["noise"]["covariance"] = value
            return r
    pytest.skip("no correlated-noise draw in 200 seeds")


BROKEN = {
    "non-integer kernel size": (lambda r: r["blur"].update(size=7.5), r"blur\.size: a kernel size must be an integer"),
    "huge kernel": (lambda r: r["blur"].update(size=10**6), r"blur\.size: a kernel size must be an integer"),
    "bool sigma": (lambda r: r["blur"].update(sigma=True), r"blur\.sigma: must be a positive finite number"),
    "NaN sigma": (lambda r: r["blur"].update(sigma=[float("nan"), 1.0]), r"blur\.sigma"),
    "absurd resize": (lambda r: r["resize"].update(size=[10**9, 24]), r"resize\.size: an image size must be two"),
    "negative noise": (lambda r: r["noise"].update(level=-3.0), r"noise\.level: must be a finite number >= 0"),
    "seed overflow": (lambda r: r["noise"].update(seed=2**70), r"noise\.seed: a seed must be an integer"),
    "quality 101": (lambda r: r.update(jpeg={"quality": 101}), r"jpeg\.quality: a JPEG quality must be"),
    "LR size off": (lambda r: r.update(lr_size=[21, 24]), r"lr_size: \[21, 24\] is not the LR size"),
    "deep nesting": (lambda r: r.update(extra=[[[[[[[1]]]]]]]), r"nested deeper than a degradation record"),
}


@pytest.mark.parametrize("case", BROKEN, ids=list(BROKEN))
def test_broken_fields_are_named(case):
    change, message = BROKEN[case]
    record = _record("classical", 1)
    record["noise"] = record["noise"] or {"kind": "color", "level": 1.0, "seed": 1}
    change(record)
    with pytest.raises(ConfigError, match=message):
        check_record(record, "a.png", HW)


def test_a_covariance_must_be_positive_definite():
    record = _bsrgan_with("covariance", [[1.0, 2.0], [2.0, 1.0]])
    with pytest.raises(ConfigError, match="symmetric positive definite"):
        check_record(record, "a.png", HW)


def test_the_cli_refuses_a_broken_replay_in_one_line_and_writes_nothing(tmp_path):
    write_image(tmp_path / "a.png", torch.rand(1, 3, *HW))
    record = _record("classical", 1)
    good = {"pipeline": "classical", "scale": 2.0, "seed": 0, "images": {"a.png": record}, "config": None}
    bad = copy.deepcopy(good)
    bad["images"]["a.png"]["blur"]["size"] = 7.5
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    (tmp_path / "deep.json").write_text("[" * 100000 + "]" * 100000)
    for file, message in (("bad.json", "blur.size"), ("deep.json", "nested deeper")):
        res = CliRunner().invoke(main, ["degrade", str(tmp_path / "a.png"), "--replay", str(tmp_path / file)])
        errors = [line for line in res.stderr.splitlines() if line.startswith("anyres: error:")]
        assert res.exit_code == 1 and len(errors) == 1 and message in errors[0], res.output
        assert "Traceback" not in res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "bad.json", "deep.json"]
