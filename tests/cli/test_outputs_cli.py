"""Side outputs never touch inputs, are all checked before anything is written, and absurd sizes or seeds
are refused up front: each refusal is one ``anyres: error:`` line, exit 1, inputs unchanged, no new file."""

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from anyres.cli import main
from anyres.cli.upscale import MAX_OUTPUT_PIXELS
from anyres.enhancement.deeplpf import DeepLPF, DeepLPFConfig
from anyres.hub import save_network

HUGE_SEED = "99999999999999999999"


def _rgb(path, size=(20, 14), seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def _files(root):
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _refused(root, *args, contains=""):
    """Run the CLI; assert one error line, exit 1, no traceback, and every file under ``root`` unchanged."""
    before = _files(root)
    res = CliRunner().invoke(main, [str(a) for a in args])
    errors = [line for line in res.output.splitlines() if line.startswith("anyres: error:")]
    assert res.exit_code == 1, res.output
    assert len(errors) == 1, res.output
    assert "Traceback" not in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
    assert contains in errors[0], errors[0]
    assert _files(root) == before  # inputs unchanged and no output created
    return errors[0]


# ----------------------------------------------------------------------------------------------- evaluate


def test_evaluate_json_or_save_onto_an_input_is_refused(tmp_path):
    hr = tmp_path / "x2"
    _rgb(hr / "a.png", size=(48, 40))
    _refused(tmp_path, "evaluate", "--data", hr, "--scales", "2", "--json", hr / "a.png", contains="is the input")
    # --save DIR writes DIR/x2/a.png: here that is the HR image itself, even with --overwrite.
    _refused(
        tmp_path, "evaluate", "--data", hr, "--scales", "2", "--save", tmp_path, "--overwrite", contains="is the input"
    )


def test_evaluate_json_refuses_an_existing_file_unless_overwrite(tmp_path):
    hr = _rgb(tmp_path / "hr" / "a.png", size=(48, 40)).parent
    report = tmp_path / "report.json"
    report.write_text("keep")
    _refused(tmp_path, "evaluate", "--data", hr, "--scales", "2", "--json", report, contains="--overwrite")
    res = CliRunner().invoke(
        main, ["evaluate", "--data", str(hr), "--scales", "2", "--json", str(report), "--overwrite"]
    )
    assert res.exit_code == 0, res.output
    assert report.read_text().startswith("{")


def test_evaluate_huge_seed(tmp_path):
    hr = _rgb(tmp_path / "hr" / "a.png", size=(48, 40)).parent
    _refused(tmp_path, "evaluate", "--data", hr, "--degradation", "classical", "--seed", HUGE_SEED, contains="--seed")


# ----------------------------------------------------------------------------------------------- degrade


def test_degrade_params_out_onto_an_input_is_refused(tmp_path):
    src = _rgb(tmp_path / "a.png")
    args = ("degrade", src, "--pipeline", "classical", "--scale", 2)
    _refused(tmp_path, *args, "--params-out", src, contains="is the input")
    _refused(tmp_path, *args, "--params-out", src, "--overwrite", contains="is the input")


def test_degrade_params_out_is_checked_before_any_lr_image(tmp_path):
    src = _rgb(tmp_path / "a.png")
    args = ("degrade", src, "--pipeline", "classical", "--scale", 2)
    (tmp_path / "old.json").write_text("keep")
    _refused(tmp_path, *args, "--params-out", tmp_path / "old.json", contains="--overwrite")
    # A folder that cannot be made (its parent is a file) fails before the LR image is written.
    _refused(tmp_path, *args, "--params-out", tmp_path / "old.json" / "p.json", contains="not a directory")
    # The params file may not take an LR image's name.
    _refused(tmp_path, *args, "-o", tmp_path / "lr.png", "--params-out", tmp_path / "lr.png", contains="LR image")


def test_degrade_absurd_scale_and_seed(tmp_path):
    src = _rgb(tmp_path / "a.png")
    msg = _refused(
        tmp_path, "degrade", src, "--pipeline", "classical", "--scale", "1e9", "--params-out", tmp_path / "p.json"
    )
    assert "--scale" in msg and "0x0" in msg
    _refused(tmp_path, "degrade", src, "--pipeline", "classical", "--scale", 2, "--seed", HUGE_SEED, contains="--seed")


# ----------------------------------------------------------------------------------------------- estimate-kernel


def test_estimate_kernel_outputs_are_checked_before_the_kernel_is_written(tmp_path):
    src = _rgb(tmp_path / "a.png", size=(64, 64))
    _refused(tmp_path, "estimate-kernel", src, "--png", src, "--iters", 1, contains="is the input")
    _refused(tmp_path, "estimate-kernel", src, "-o", tmp_path / "a.png" / "k.npy", contains="not a directory")
    (tmp_path / "k.json").write_text("keep")
    _refused(tmp_path, "estimate-kernel", src, "--json", tmp_path / "k.json", "--iters", 1, contains="--overwrite")
    _refused(tmp_path, "estimate-kernel", src, "--json", tmp_path / "a.png" / "k.json", contains="not a directory")
    _refused(tmp_path, "estimate-kernel", src, "--seed", HUGE_SEED, contains="--seed")


# ----------------------------------------------------------------------------------------------- enhance


def test_enhance_explain_file_onto_an_input_is_refused(tmp_path):
    torch.manual_seed(3)
    net = DeepLPF(DeepLPFConfig(width=2, features=4, head_size=8, init="default"))
    model = save_network(net, tmp_path / "dlpf", extra={"name": "tiny-deeplpf"})
    src = _rgb(tmp_path / "a.png")
    other = _rgb(tmp_path / "a_filters.png", seed=1)  # the --explain picture of a.png
    before = (src.read_bytes(), other.read_bytes())
    res = CliRunner().invoke(
        main, [str(a) for a in ("enhance", src, other, "--model", model, "--explain", "--overwrite")]
    )
    errors = [line for line in res.output.splitlines() if line.startswith("anyres: error:")]
    assert res.exit_code == 1 and len(errors) == 1 and "is the input" in errors[0], res.output
    assert "Traceback" not in res.output
    assert (src.read_bytes(), other.read_bytes()) == before
    # Nothing of a.png's job is written; the other input, a batch of its own, still is.
    assert not (tmp_path / "a_enhanced.png").exists() and not (tmp_path / "a_filters.json").exists()
    assert (tmp_path / "a_filters_enhanced.png").is_file()


# ----------------------------------------------------------------------------------------------- upscale


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--scale", "1e9"),
        ("--scale", "1e4"),
        ("--size", "99999x99999"),
        ("--width", "99999999"),
        ("--height", "99999999"),
    ],
)
def test_upscale_refuses_outputs_over_the_pixel_limit(tmp_path, flag, value):
    src = _rgb(tmp_path / "a.png")
    msg = _refused(tmp_path, "upscale", src, flag, value, "--model", "bicubic", contains=f"{flag} ")
    assert "--max-output-pixels" in msg


def test_upscale_pixel_limit_is_overridable(tmp_path):
    src = _rgb(tmp_path / "a.png")
    assert MAX_OUTPUT_PIXELS == 400_000_000
    _refused(tmp_path, "upscale", src, "--scale", 2, "--max-output-pixels", 100, "--model", "bicubic", contains="40x28")
    res = CliRunner().invoke(
        main, ["upscale", str(src), "--scale", "2", "--max-output-pixels", "1120", "--model", "bicubic"]
    )
    assert res.exit_code == 0, res.output
    assert Image.open(tmp_path / "a_anyres.png").size == (40, 28)


def test_upscale_refuses_a_scale_that_rounds_to_zero_pixels_and_a_huge_seed(tmp_path):
    src = _rgb(tmp_path / "a.png")
    _refused(tmp_path, "upscale", src, "--scale", "1e-9", "--model", "bicubic", contains="at least 1 pixel")
    _refused(tmp_path, "upscale", src, "--scale", 2, "--seed", HUGE_SEED, "--model", "bicubic", contains="--seed")


def test_an_output_that_would_not_fit_in_memory_is_refused_up_front(tmp_path, monkeypatch):
    import numpy as np
    from click.testing import CliRunner
    from PIL import Image

    import anyres.cli.upscale as upscale_module
    from anyres.cli import main

    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(tmp_path / "a.png")
    monkeypatch.setattr(upscale_module, "_physical_memory", lambda: 2**30)  # a 1 GiB machine
    args = ["upscale", str(tmp_path / "a.png"), "--model", "bicubic", "-o", str(tmp_path / "b.png")]
    res = CliRunner().invoke(main, [*args, "--size", "4000x4000"])  # 16 MP * 36 B = 0.54 GiB > 50 %
    assert res.exit_code == 1 and "over 50% of this machine's 1.0 GiB" in res.stderr
    assert not (tmp_path / "b.png").exists()
    assert CliRunner().invoke(main, [*args, "--size", "100x100"]).exit_code == 0
