"""``evaluate(task=...)`` / ``anyres evaluate --task``: the JSON contract, per-image seeded damage, scores
recomputed independently (numpy PSNR on 8-bit RGB, no shave), refusals, and the ``rgb`` protocol."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from anyres.cli import main
from anyres.degrade import derive_seed
from anyres.enhancement.deeplpf import DeepLPF, DeepLPFConfig
from anyres.enhancement.tasks import get_task
from anyres.enhancement.unet import UNetEnhancer
from anyres.errors import AnyresError
from anyres.evaluation import evaluate
from anyres.hub import load_network, save_network
from anyres.io import read_image, write_image
from anyres.metrics import PROTOCOLS, RGB_PROTOCOL, measure, prepare, shave_for, ssim
from anyres.ops.color import to_rgb

pytestmark = pytest.mark.usefixtures("one_thread")

NAMES = ("a", "b", "c")


def _smooth(h, w, c, seed):
    rng = np.random.default_rng(seed)
    yy, xx = np.meshgrid(np.arange(h) / h, np.arange(w) / w, indexing="ij")
    chans = [
        0.5 + 0.4 * np.sin(2 * np.pi * (rng.uniform(1, 3) * yy + rng.uniform(1, 3) * xx) + rng.uniform(0, 6))
        for _ in range(c)
    ]
    return torch.from_numpy((np.round(np.stack(chans)[None] * 255) / 255).astype(np.float32))


@pytest.fixture(scope="module")
def hr_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("hr")
    write_image(d / "a.png", _smooth(24, 32, 3, 1))
    write_image(d / "b.png", _smooth(24, 32, 3, 2))
    write_image(d / "c.png", _smooth(21, 27, 1, 3))  # grayscale: measured as RGB
    return d


@pytest.fixture(scope="module")
def deeplpf_dir(tmp_path_factory):
    torch.manual_seed(5)  # an untrained ("0 steps") network: its output differs from its input
    net = DeepLPF(DeepLPFConfig(width=2, features=4, head_size=8, init="default"))
    return save_network(net, tmp_path_factory.mktemp("m") / "dlpf", extra={"name": "tiny-deeplpf"})


def _psnr_8bit(a, b):
    """PSNR (peak 255) of two [0, 1] tensors rounded to 8 bits, all channels, no shave, in numpy."""
    x = np.round(a.double().numpy() * 255)
    y = np.round(b.double().numpy() * 255)
    return 10 * np.log10(255.0**2 / np.mean((x - y) ** 2))


def _damaged(hr_dir, name, task, seed):
    """The evaluation's input for one image, rebuilt from the documented rule."""
    clean = to_rgb(read_image(hr_dir / f"{name}.png")[0])
    damage = get_task(task)
    record = damage.sample(1, torch.Generator().manual_seed(derive_seed(seed, f"{name}.png")))[0]
    return clean, damage.apply(clean, [record]), record


def test_report_contract_and_input_scores_recomputed_independently(hr_dir, deeplpf_dir, tmp_path):
    report = evaluate(deeplpf_dir, hr_dir, task="retouch", seed=5, json_path=tmp_path / "r.json", progress=False)
    assert set(report) == {"model", "dataset", "protocol", "task", "results"}
    assert report["protocol"] == "rgb" and report["task"] == {"name": "retouch", "seed": 5}
    assert report["model"] == str(deeplpf_dir) and report["dataset"] == hr_dir.name
    assert len(report["results"]) == 1
    r = report["results"][0]
    assert set(r) == {"scale", "psnr", "ssim", "input_psnr", "input_ssim", "n", "seconds", "per_image"}
    assert r["scale"] == 1 and type(r["scale"]) is float and r["n"] == 3 and set(r["per_image"]) == set(NAMES)
    for key in ("psnr", "ssim", "input_psnr", "input_ssim"):
        assert type(r[key]) is float
        assert r[key] == pytest.approx(np.mean([v[key] for v in r["per_image"].values()]), abs=1e-12)
    net, _ = load_network(deeplpf_dir)  # eval mode: the heads' dropout is off
    for name, v in r["per_image"].items():
        assert set(v) == {"psnr", "ssim", "input_psnr", "input_ssim", "task"}
        clean, damaged, record = _damaged(hr_dir, name, "retouch", 5)
        assert v["task"] == record
        assert v["input_psnr"] == pytest.approx(_psnr_8bit(damaged, clean), abs=1e-9)
        with torch.no_grad():
            out = net(damaged)
        assert v["psnr"] == pytest.approx(_psnr_8bit(out, clean), abs=1e-9)
        assert v["psnr"] != pytest.approx(v["input_psnr"], abs=1e-3)  # the model did change the image
        ref = ssim(torch.round(out.double() * 255), torch.round(clean.double() * 255))
        assert v["ssim"] == pytest.approx(float(ref[0]), abs=1e-9)
    assert json.loads((tmp_path / "r.json").read_text()) == report


def test_identity_model_scores_equal_the_input_scores_and_saves_its_outputs(hr_dir, tmp_path):
    report = evaluate(
        UNetEnhancer(width=2, levels=2), hr_dir, task="lowlight", seed=1, progress=False, save_dir=tmp_path / "saved"
    )
    r = report["results"][0]
    assert r["psnr"] == r["input_psnr"] and r["ssim"] == r["input_ssim"]
    assert r["input_psnr"] < 20  # low light is real damage
    assert report["model"] == "UNetEnhancer"
    # The identity's saved output is the damaged input itself.
    clean, damaged, _ = _damaged(hr_dir, "c", "lowlight", 1)
    saved, _ = read_image(tmp_path / "saved" / "lowlight" / "c.png")
    assert torch.equal(saved, damaged)


def test_damage_is_seeded_per_image_independently_of_the_others(hr_dir, tmp_path):
    one = tmp_path / "one"
    one.mkdir()
    (one / "b.png").write_bytes((hr_dir / "b.png").read_bytes())
    net = UNetEnhancer(width=2, levels=2)
    full = evaluate(net, hr_dir, task="lowlight", seed=3, progress=False)["results"][0]["per_image"]
    alone = evaluate(net, one, task="lowlight", seed=3, progress=False)["results"][0]["per_image"]
    other = evaluate(net, one, task="lowlight", seed=4, progress=False)["results"][0]["per_image"]
    assert alone["b"] == full["b"] and other["b"]["task"] != alone["b"]["task"]
    assert full["a"]["task"] != full["b"]["task"]


def test_library_refuses_sr_options_with_a_task(hr_dir):
    net = UNetEnhancer(width=2, levels=2)
    for kwargs, message in (
        ({"scales": [2]}, "--scales"),
        ({"protocol": "div2k"}, "--protocol"),
        ({"degradation": "classical"}, "--degradation"),
        ({"mode": "exact"}, "--mode"),
    ):
        with pytest.raises(AnyresError, match=message):
            evaluate(net, hr_dir, task="retouch", progress=False, **kwargs)
    with pytest.raises(AnyresError, match="upscaling model"):
        evaluate("bicubic", hr_dir, task="retouch", progress=False)


def _one_line_error(res):
    assert res.exit_code == 1 and "Traceback" not in res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("anyres: error:")
    return lines[0]


def test_cli_task_writes_the_library_report_and_a_table(hr_dir, deeplpf_dir, tmp_path):
    out = tmp_path / "cli.json"
    res = CliRunner().invoke(
        main,
        [
            "evaluate",
            "--task",
            "lowlight",
            "--model",
            str(deeplpf_dir),
            "--data",
            str(hr_dir),
            "--seed",
            "2",
            "--json",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    written = json.loads(out.read_text())
    lib = evaluate(deeplpf_dir, hr_dir, task="lowlight", seed=2, progress=False)
    for report in (written, lib):
        report["results"][0].pop("seconds")
    assert written == lib
    assert "| scale | PSNR (dB) | SSIM | input PSNR (dB) | input SSIM | images | seconds |" in res.stdout
    row = next(line for line in res.stdout.splitlines() if line.startswith("| x1 |"))
    assert row.split("|")[2].strip() == f"{written['results'][0]['psnr']:.2f}"
    assert "(rgb protocol, inputs by lowlight damage with seed 2)" in res.stdout


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--scales", "2"], "--scales"),
        (["--protocol", "div2k"], "--protocol"),
        (["--degradation", "bsrgan"], "--degradation"),
    ],
)
def test_cli_task_rejects_explicit_sr_options(hr_dir, deeplpf_dir, extra, message):
    res = CliRunner().invoke(
        main, ["evaluate", "--task", "retouch", "--model", str(deeplpf_dir), "--data", str(hr_dir), *extra]
    )
    assert message in _one_line_error(res)


def test_cli_task_errors(hr_dir, tmp_path):
    report = ["--json", str(tmp_path / "r.json")]
    assert "--model" in _one_line_error(
        CliRunner().invoke(main, ["evaluate", "--task", "retouch", "--data", str(hr_dir), *report])
    )
    res = CliRunner().invoke(
        main, ["evaluate", "--task", "retouch", "--model", "no-such-enhancer", "--data", str(hr_dir), *report]
    )
    assert "no-such-enhancer" in _one_line_error(res)
    res = CliRunner().invoke(
        main, ["evaluate", "--task", "lowlight", "--model", str(tmp_path / "none"), "--data", str(hr_dir), *report]
    )
    assert "none" in _one_line_error(res)
    res = CliRunner().invoke(main, ["evaluate", "--task", "sharpen", "--model", "x", "--data", str(hr_dir)])
    assert res.exit_code == 2 and "sharpen" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "r.json").exists()


def test_rgb_protocol_measures_all_channels_without_shave():
    assert PROTOCOLS == ("benchmark", "div2k") and RGB_PROTOCOL == "rgb"
    assert shave_for(1, "rgb") == 0 and shave_for(4.5, "rgb") == 0
    img = torch.rand(1, 3, 13, 11)
    torch.testing.assert_close(prepare(img, 1, "rgb"), torch.round(img.double() * 255), rtol=0, atol=1e-9)
    other = (img + 0.05).clamp(0, 1)
    assert measure(other, img, 1, "rgb").psnr == pytest.approx(_psnr_8bit(other, img), abs=1e-9)
