"""``anyres enhance`` and ``anyres.enhance``: outputs, formats, alpha and gray, --explain files, refusals."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import anyres
from anyres.cli import main
from anyres.enhancement.api import FILTER_PANELS, load_enhancer
from anyres.enhancement.deeplpf import DeepLPF, DeepLPFConfig
from anyres.enhancement.unet import UNetEnhancer
from anyres.errors import ImageWriteError, RegistryError
from anyres.hub import save_network
from anyres.io import read_image
from anyres.ops.color import to_rgb

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def deeplpf_dir(tmp_path):
    torch.manual_seed(3)
    net = DeepLPF(DeepLPFConfig(width=2, features=4, head_size=8, init="default"))
    return save_network(net, tmp_path / "dlpf", extra={"name": "tiny-deeplpf"})


@pytest.fixture
def unet_dir(tmp_path):
    return save_network(UNetEnhancer(width=2, levels=2), tmp_path / "unet", extra={"name": "tiny-unet"})


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _rgb(path, size=(20, 14), seed=0):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def _expected(folder, path):
    """The network's output for an input file, rounded to 8 bits (computed without the CLI)."""
    net = load_enhancer(folder)
    img, _ = read_image(path)
    with torch.no_grad():
        return torch.round(net(to_rgb(img)) * 255) / 255


def _one_line_error(res):
    assert res.exit_code == 1 and "Traceback" not in res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("anyres: error:")
    return lines[0]


def test_default_name_out_dir_and_output_hold_the_network_output(tmp_path, deeplpf_dir):
    src = _rgb(tmp_path / "a.png")
    res = _run("enhance", src, "--model", deeplpf_dir)
    assert res.exit_code == 0, res.output
    out = tmp_path / "a_enhanced.png"
    got, _ = read_image(out)
    assert Image.open(out).size == (20, 14) and torch.equal(got, _expected(deeplpf_dir, src))
    assert _run("enhance", src, "--model", deeplpf_dir, "--out-dir", tmp_path / "o").exit_code == 0
    assert torch.equal(read_image(tmp_path / "o" / "a.png")[0], got)
    assert _run("enhance", src, "--model", deeplpf_dir, "-o", tmp_path / "x.jpg").exit_code == 0
    assert Image.open(tmp_path / "x.jpg").format == "JPEG" and Image.open(tmp_path / "x.jpg").size == (20, 14)


def test_formats_alpha_gray_and_16_bit_are_kept(tmp_path, deeplpf_dir):
    rgba = np.zeros((12, 10, 4), np.uint8)
    rgba[..., :3] = np.random.default_rng(1).integers(0, 256, (12, 10, 3))
    rgba[..., 3] = np.arange(10, dtype=np.uint8)[None] * 20
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    Image.fromarray(np.random.default_rng(2).integers(0, 256, (12, 10), dtype=np.uint8), "L").save(
        tmp_path / "gray.png"
    )
    Image.fromarray(np.full((12, 10), 40000, np.uint16)).save(tmp_path / "deep.png")
    _rgb(tmp_path / "photo.jpg")
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("alpha.png", "gray.png", "deep.png", "photo.jpg"):
        (folder / name).write_bytes((tmp_path / name).read_bytes())
    res = _run("enhance", folder, "--out-dir", tmp_path / "out", "--model", deeplpf_dir)
    assert res.exit_code == 0, res.output
    a = Image.open(tmp_path / "out" / "alpha.png")
    assert a.mode == "RGBA" and a.size == (10, 12)
    assert np.array_equal(np.asarray(a)[..., 3], rgba[..., 3])  # alpha kept exactly
    g = Image.open(tmp_path / "out" / "gray.png")
    assert g.mode == "L" and g.size == (10, 12)
    # Gray is enhanced as RGB and written back as BT.601 luma.
    expected = _expected(deeplpf_dir, tmp_path / "gray.png")
    luma = (expected * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1)
    assert np.abs(np.asarray(g).astype(float) - np.round(luma[0].numpy() * 255)).max() <= 1
    _, meta = read_image(tmp_path / "out" / "deep.png")
    assert meta.bit_depth == 16 and meta.gray
    assert Image.open(tmp_path / "out" / "photo.jpg").format == "JPEG"


def test_explain_writes_parameters_matching_explain_and_a_decodable_map_picture(tmp_path, deeplpf_dir):
    src = _rgb(tmp_path / "a.png", size=(17, 11))
    res = _run("enhance", src, "--model", deeplpf_dir, "--explain")
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "a_filters.json").read_text())
    net = load_enhancer(deeplpf_dir)
    x = to_rgb(read_image(src)[0])
    info = net.explain(x)
    assert report["parameters"] == info["parameters"][0]  # JSON round trip of plain floats is exact
    assert report["fusion"] == "sum" and report["cubic_terms"] == info["cubic_terms"]
    assert report["input"] == str(src) and report["output"] == str(tmp_path / "a_enhanced.png")
    assert report["picture"]["file"] == "a_filters.png" and report["picture"]["panels"] == list(FILTER_PANELS)
    picture = np.asarray(Image.open(tmp_path / "a_filters.png")).astype(np.float64)
    assert picture.shape == (11, 3 * 17, 3)
    for k, name in enumerate(FILTER_PANELS):
        gain = 2 * picture[:, k * 17 : (k + 1) * 17] / 255  # the documented encoding
        assert np.abs(gain - info["maps"][name][0].permute(1, 2, 0).numpy()).max() <= 1 / 255 + 1e-6
    # The enhanced image is the network's forward output.
    assert torch.equal(read_image(tmp_path / "a_enhanced.png")[0], _expected(deeplpf_dir, src))


def test_errors_are_one_line_and_leave_no_output(tmp_path, deeplpf_dir, unet_dir):
    a, b = _rgb(tmp_path / "a.png"), _rgb(tmp_path / "b.png", seed=1)
    assert "no-such-enhancer" in _one_line_error(_run("enhance", a, "--model", "no-such-enhancer"))
    assert "upscaling model" in _one_line_error(_run("enhance", a, "--model", "bicubic"))
    assert "DeepLPF" in _one_line_error(_run("enhance", a, "--model", unet_dir, "--explain"))
    assert "-o" in _one_line_error(_run("enhance", a, b, "-o", tmp_path / "x.png", "--model", deeplpf_dir))
    assert "no such file" in _one_line_error(_run("enhance", tmp_path / "missing.png", "--model", deeplpf_dir))
    assert not list(tmp_path.glob("*_enhanced.png")) and not list(tmp_path.glob("*_filters.*"))
    # A bad input is reported while the good one is written.
    (tmp_path / "bad.png").write_text("not an image")
    res = _run("enhance", tmp_path / "bad.png", a, "--model", unet_dir)
    assert res.exit_code == 1 and (tmp_path / "a_enhanced.png").is_file()
    assert not (tmp_path / "bad_enhanced.png").exists()
    assert [line for line in res.stderr.splitlines() if line.startswith("anyres: error:")] == [
        line for line in res.stderr.splitlines() if "bad.png" in line and "error" in line
    ]


def test_inputs_and_existing_outputs_are_never_clobbered(tmp_path, deeplpf_dir):
    src = _rgb(tmp_path / "a.png")
    before = src.read_bytes()
    _one_line_error(_run("enhance", src, "-o", src, "--overwrite", "--model", deeplpf_dir))
    assert src.read_bytes() == before
    # An existing explain file blocks the whole image: nothing else is written either.
    (tmp_path / "a_filters.png").write_bytes(b"keep")
    assert "overwrite" in _one_line_error(_run("enhance", src, "--explain", "--model", deeplpf_dir))
    assert not (tmp_path / "a_enhanced.png").exists() and not (tmp_path / "a_filters.json").exists()
    assert (tmp_path / "a_filters.png").read_bytes() == b"keep"
    res = _run("enhance", src, "--explain", "--overwrite", "--model", deeplpf_dir)
    assert res.exit_code == 0, res.output
    assert Image.open(tmp_path / "a_filters.png").size == (60, 14)


def test_a_failed_write_removes_the_files_of_that_image(tmp_path, deeplpf_dir, monkeypatch):
    import anyres.io

    def fail(*args, **kwargs):
        raise ImageWriteError("cannot write: disk full (simulated)")

    monkeypatch.setattr(anyres.io, "write_bytes_atomic", fail)  # the JSON is written after the image
    src = _rgb(tmp_path / "a.png")
    assert "disk full" in _one_line_error(_run("enhance", src, "--explain", "--model", deeplpf_dir))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "dlpf"]


def test_registered_names_resolve_to_shipped_folders_and_report_missing_weights(tmp_path, deeplpf_dir, monkeypatch):
    import shutil

    import anyres.hub

    # Shipped names are the folders of the weights directory: a card without its weights is reported as such.
    monkeypatch.setattr(anyres.hub, "WEIGHTS_DIR", tmp_path / "weights")
    card_only = tmp_path / "weights" / "deeplpf-lowlight"
    card_only.mkdir(parents=True)
    shutil.copy(deeplpf_dir / "config.json", card_only / "config.json")
    src = _rgb(tmp_path / "a.png")
    message = _one_line_error(_run("enhance", src, "--model", "deeplpf-lowlight"))
    assert "deeplpf-lowlight" in message and "not in this installation" in message
    with pytest.raises(RegistryError, match="not in this installation"):
        load_enhancer("deeplpf-lowlight")
    assert "(weights not in this installation)" in _run("models").output
    with pytest.raises(RegistryError, match="unknown enhancement model 'deeplpf-retouch'"):
        load_enhancer("deeplpf-retouch")
    (tmp_path / "weights" / "deeplpf-retouch").symlink_to(deeplpf_dir, target_is_directory=True)
    assert isinstance(load_enhancer("deeplpf-retouch"), DeepLPF)
    assert _run("enhance", src, "--model", "deeplpf-retouch").exit_code == 0


def test_python_api_matches_the_cli_and_keeps_the_channel_count(tmp_path, deeplpf_dir):
    src = _rgb(tmp_path / "a.png")
    out = anyres.enhance(src, model=deeplpf_dir)
    assert out.shape == (1, 3, 14, 20) and out.min() >= 0 and out.max() <= 1
    _run("enhance", src, "-o", tmp_path / "cli.png", "--model", deeplpf_dir)
    assert torch.equal(read_image(tmp_path / "cli.png")[0], torch.round(out * 255) / 255)
    gray = torch.rand(1, 13, 9)
    assert anyres.enhance(gray, model=deeplpf_dir).shape == (1, 1, 13, 9)
    assert "enhance" in anyres.__all__


def _scene(size=96):
    """A smooth, photo-like test scene: colour gradients, a bright disc and a dark band, in [0, 1]."""
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    disc = ((x - 0.65) ** 2 + (y - 0.4) ** 2 < 0.04).float()
    band = ((y > 0.75) & (y < 0.85)).float()
    rgb = torch.stack([0.3 + 0.4 * x, 0.25 + 0.5 * y, 0.6 - 0.3 * x * y]) * (1 - 0.5 * band) + 0.3 * disc
    return rgb.clamp(0, 1)[None]


# Mean PSNR gains measured on this scene: about 10 dB (lowlight) and 2.6 dB (retouch, a milder damage).
@pytest.mark.parametrize(
    "name, task, min_gain", [("deeplpf-lowlight", "lowlight", 3.0), ("deeplpf-retouch", "retouch", 1.0)]
)
def test_shipped_enhancers_load_by_name_and_undo_their_damage(name, task, min_gain):
    from anyres.enhancement.tasks import get_task
    from anyres.evaluation import make_damaged
    from anyres.hub import WEIGHTS_DIR
    from anyres.metrics import RGB_PROTOCOL, measure

    if not (WEIGHTS_DIR / name / "config.json").is_file():
        pytest.skip(f"{name} is not shipped in this checkout")
    net = load_enhancer(name)
    assert isinstance(net, DeepLPF) and not net.training
    clean = _scene()
    damage = get_task(task)
    gains = []
    for key in ("a.png", "b.png", "c.png"):
        damaged, _ = make_damaged(clean, damage, 0, key)
        with torch.no_grad():
            out = net(damaged).clamp(0, 1)
        gains.append(measure(out, clean, 1, RGB_PROTOCOL).psnr - measure(damaged, clean, 1, RGB_PROTOCOL).psnr)
    assert sum(gains) / len(gains) > min_gain, gains
