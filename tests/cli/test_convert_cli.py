"""``anyres convert`` and ``--model FILE.pth``: official yinboc/liif and RRDBNet checkpoints end to end."""

import argparse
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from anyres.cli import main

OFFICIAL = Path(__file__).resolve().parents[1] / "data" / "official"


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _errors(res):
    return [line for line in res.stderr.splitlines() if line.startswith("anyres: error:")]


@pytest.fixture(params=["liif-rdn-tiny.pth", "rrdbnet-x2-tiny.pth"])
def ckpt(tmp_path, request):
    return Path(shutil.copy(OFFICIAL / request.param, tmp_path / request.param))


def test_upscale_from_the_pth_equals_upscale_from_its_converted_folder(tmp_path, ckpt):
    image = OFFICIAL / "input_24x30.png"
    res = _run("upscale", image, "--size", "61x49", "--model", ckpt, "-o", tmp_path / "from_pth.png")
    assert res.exit_code == 0, res.output
    res = _run("convert", ckpt, "-o", tmp_path / "folder")
    assert res.exit_code == 0, res.output
    assert ckpt.name in (tmp_path / "folder" / "README.md").read_text()
    res = _run("upscale", image, "--size", "61x49", "--model", tmp_path / "folder", "-o", tmp_path / "from_dir.png")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "from_pth.png").read_bytes() == (tmp_path / "from_dir.png").read_bytes()


def test_convert_refuses_to_overwrite(tmp_path, ckpt):
    assert _run("convert", ckpt, "-o", tmp_path / "folder").exit_code == 0
    before = (tmp_path / "folder" / "model.safetensors").stat().st_mtime_ns
    res = _run("convert", ckpt, "-o", tmp_path / "folder")
    assert res.exit_code == 1 and len(_errors(res)) == 1 and "--overwrite" in _errors(res)[0]
    assert (tmp_path / "folder" / "model.safetensors").stat().st_mtime_ns == before
    assert _run("convert", ckpt, "-o", tmp_path / "folder", "--overwrite").exit_code == 0


def test_unknown_layout_and_pickled_objects_fail_with_one_line(tmp_path):
    torch.save({"params_ema": {"conv.weight": torch.zeros(1)}}, tmp_path / "other.pth")
    torch.save({"model": {}, "optimizer": argparse.Namespace(lr=1e-4)}, tmp_path / "pickled.pth")
    image = OFFICIAL / "input_24x30.png"
    for name, expected in (
        ("other.pth", "unknown checkpoint layout; known: yinboc/liif"),
        ("pickled.pth", "needs arbitrary unpickling"),
    ):
        for args in (
            ("convert", tmp_path / name, "-o", tmp_path / "out"),
            ("upscale", image, "--scale", 2, "--model", tmp_path / name, "-o", tmp_path / "x.png"),
        ):
            res = _run(*args)
            assert res.exit_code == 1 and "Traceback" not in res.output, res.output
            assert len(_errors(res)) == 1 and expected in _errors(res)[0], res.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "x.png").exists()


def test_evaluate_and_compare_take_a_foreign_checkpoint(tmp_path, ckpt):
    data = tmp_path / "hr"
    data.mkdir()
    shutil.copy(OFFICIAL / "input_24x30.png", data / "a.png")
    res = _run("evaluate", "--model", ckpt, "--data", data, "--scales", "2", "--json", tmp_path / "r.json")
    assert res.exit_code == 0, res.output
    assert "| x2 |" in res.stdout and (tmp_path / "r.json").is_file()
    res = _run("compare", data / "a.png", "--scale", "2", "--models", f"bicubic,{ckpt}", "-o", tmp_path / "c.png")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "c.png").stat().st_size > 0 and ckpt.stem in res.stdout
