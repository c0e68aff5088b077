"""The batch loop shared by upscale, enhance and degrade: the same overwrite and error rules for each."""

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from anyres.cli import main
from anyres.enhancement.unet import UNetEnhancer
from anyres.hub import save_network


@pytest.fixture
def commands(tmp_path):
    unet = save_network(UNetEnhancer(width=2, levels=2), tmp_path / "unet", extra={"name": "tiny-unet"})
    return {
        "upscale": (["upscale", "--scale", "2", "--model", "bicubic"], "{stem}_anyres.png"),
        "enhance": (["enhance", "--model", str(unet)], "{stem}_enhanced.png"),
        "degrade": (["degrade", "--pipeline", "classical", "--scale", "2"], "{stem}_classical_x2.png"),
    }


NAMES = ("upscale", "enhance", "degrade")


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _rgb(path, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (14, 20, 3), dtype=np.uint8)).save(path)
    return path


def _errors(res):
    return [line for line in res.stderr.splitlines() if line.startswith("anyres: error:")]


@pytest.mark.parametrize("name", NAMES)
def test_default_output_name_beside_the_input_and_overwrite_rule(tmp_path, commands, name):
    args, beside = commands[name]
    src = _rgb(tmp_path / "a.png")
    target = tmp_path / beside.format(stem="a")
    assert _run(*args, src).exit_code == 0 and target.is_file()
    first = target.read_bytes()
    target.write_bytes(b"keep")
    res = _run(*args, src)
    assert res.exit_code == 1 and _errors(res) == [
        f"anyres: error: {target}: already exists; pass --overwrite to replace it"
    ]
    assert target.read_bytes() == b"keep"
    assert _run(*args, src, "--overwrite").exit_code == 0 and target.read_bytes() == first


@pytest.mark.parametrize("name", NAMES)
def test_an_input_is_never_overwritten(tmp_path, commands, name):
    args, _ = commands[name]
    src = _rgb(tmp_path / "a.png")
    before = src.read_bytes()
    res = _run(*args, src, "-o", src, "--overwrite")
    assert res.exit_code == 1 and len(_errors(res)) == 1 and src.read_bytes() == before


@pytest.mark.parametrize("name", NAMES)
def test_one_error_line_per_bad_input_while_the_others_finish(tmp_path, commands, name):
    args, _ = commands[name]
    good = [_rgb(tmp_path / "in" / "a.png"), _rgb(tmp_path / "in" / "b.png", 1)]
    (tmp_path / "in" / "bad.png").write_text("not an image")
    res = _run(*args, tmp_path / "in", tmp_path / "missing.png", "--out-dir", tmp_path / "out")
    assert res.exit_code == 1 and "Traceback" not in res.output
    errors = _errors(res)
    assert len(errors) == 2 and any("bad.png" in e for e in errors) and any("missing.png" in e for e in errors)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [p.name for p in good]
    assert all(f"{p} -> {tmp_path / 'out' / p.name}" in res.stderr for p in good)


@pytest.mark.parametrize("name", NAMES)
def test_one_output_is_never_written_twice_in_a_run(tmp_path, commands, name):
    # Every output name of the job is checked before the first is written: nothing is written at all.
    args, _ = commands[name]
    first, second = _rgb(tmp_path / "x" / "a.png"), _rgb(tmp_path / "y" / "a.png", 1)
    res = _run(*args, first, second, "--out-dir", tmp_path / "out", "--overwrite")
    assert res.exit_code == 1 and len(_errors(res)) == 1 and "Traceback" not in res.output
    assert "a.png" in _errors(res)[0] and not (tmp_path / "out").exists()
    if name != "degrade":  # degrade refuses twin file names even in different folders (its records are keyed by them)
        assert str(first) in _errors(res)[0] and str(second) in _errors(res)[0]


@pytest.mark.parametrize("name", NAMES)
def test_dash_o_takes_one_input(tmp_path, commands, name):
    args, _ = commands[name]
    a, b = _rgb(tmp_path / "a.png"), _rgb(tmp_path / "b.png", 1)
    res = _run(*args, a, b, "-o", tmp_path / "o.png")
    assert res.exit_code == 1 and "exactly one input" in res.stderr and not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("name", NAMES)
def test_skip_existing_finishes_a_half_done_folder_job(tmp_path, commands, name):
    args, _ = commands[name]
    srcs = [_rgb(tmp_path / "in" / f"{c}.png", seed=i) for i, c in enumerate("abc")]
    out = tmp_path / "out"
    assert _run(*args, srcs[0], "--out-dir", out).exit_code == 0  # the first run stopped after one image
    done = (out / "a.png").read_bytes()
    res = _run(*args, tmp_path / "in", "--out-dir", out)  # without the flag: one refusal, the rest finish
    assert res.exit_code == 1 and len(_errors(res)) == 1 and "1 failed" in res.stderr.splitlines()[-1]
    for p in (out / "b.png", out / "c.png"):
        p.unlink()
    res = _run(*args, tmp_path / "in", "--out-dir", out, "--skip-existing")
    assert res.exit_code == 0, res.output
    assert res.stderr.splitlines()[-1] == "2 done, 1 skipped, 0 failed"
    assert (out / "a.png").read_bytes() == done and (out / "b.png").is_file() and (out / "c.png").is_file()
    res = _run(*args, tmp_path / "in", "--out-dir", out, "--skip-existing", "--overwrite")
    assert res.exit_code == 1 and "contradict" in _errors(res)[0]


@pytest.mark.parametrize("name", NAMES)
def test_recursive_keeps_the_tree_and_suffix_and_ext_name_the_outputs(tmp_path, commands, name):
    args, _ = commands[name]
    _rgb(tmp_path / "in" / "a.png")
    _rgb(tmp_path / "in" / "sub" / "deeper" / "a.png", seed=1)
    _rgb(tmp_path / "in" / ".hidden" / "x.png", seed=2)  # hidden folders are skipped
    res = _run(*args, tmp_path / "in", "--out-dir", tmp_path / "out", "-r", "--suffix", "_v2", "--ext", "tif")
    assert res.exit_code == 0, res.output
    written = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert written == ["a_v2.tif", "sub/deeper/a_v2.tif"]
    assert Image.open(tmp_path / "out" / "sub" / "deeper" / "a_v2.tif").format == "TIFF"
    res = _run(*args, tmp_path / "in", "--out-dir", tmp_path / "o2")  # not recursive: the top folder only
    assert res.exit_code == 0 and [p.name for p in (tmp_path / "o2").rglob("*")] == ["a.png"]
    bad = _run(*args, tmp_path / "in" / "a.png", "--ext", "gif", "-o", tmp_path / "x.gif")
    assert bad.exit_code == 1 and "--ext .gif" in _errors(bad)[0]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("ext,mode", [(".gif", "P"), (".ppm", "RGB"), (".pgm", "L"), (".tga", "RGB"), (".ico", "RGBA")])
def test_formats_read_but_not_written_come_out_as_png(tmp_path, commands, name, ext, mode):
    args, beside = commands[name]
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).convert(mode)
    img.save(tmp_path / f"a{ext}")
    res = _run(*args, tmp_path / f"a{ext}")
    assert res.exit_code == 0, res.output
    target = tmp_path / beside.format(stem="a")
    assert target.suffix == ".png" and Image.open(target).format == "PNG"


@pytest.mark.parametrize("name", NAMES)
def test_off_a_terminal_progress_is_a_status_line(tmp_path, commands, name, monkeypatch):
    monkeypatch.setenv("ANYRES_PROGRESS_SECONDS", "0")  # a line at every step instead of every 30 s
    args, _ = commands[name]
    for i in range(3):
        _rgb(tmp_path / "in" / f"{i}.png", seed=i)
    res = _run(*args, tmp_path / "in", "--out-dir", tmp_path / "out")
    assert res.exit_code == 0, res.output
    status = [line for line in res.stderr.splitlines() if line.startswith("images: ")]
    assert [s.split(" (")[0] for s in status] == ["images: 1/3 img", "images: 2/3 img"], res.stderr
    assert all("img/s" in s and "left" in s for s in status) and "\r" not in res.stderr
