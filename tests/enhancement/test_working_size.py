"""The large-image enhancement path: working sizes, bicubic and LMAR resampling, CLI/evaluate options, and
bounded memory for a 4000 x 3000 input."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from anyres.cli import main
from anyres.enhancement.api import enhance_rgb, load_resampler, working_size
from anyres.enhancement.lmar import LMAR, LMARConfig
from anyres.enhancement.unet import UNetEnhancer
from anyres.errors import AnyresError
from anyres.hub import save_network
from anyres.ops.resize import imresize

pytestmark = pytest.mark.usefixtures("one_thread")


class _Identity(torch.nn.Module):
    def forward(self, x):
        return x


def test_working_size_by_hand():
    assert working_size(3000, 4000, long_side=512) == (384, 512)
    assert working_size(300, 200, long_side=512) == (300, 200)  # never enlarged
    assert working_size(100, 50, scale=3) == (33, 17)  # 33.33 -> 33, 16.67 -> 17
    assert working_size(5, 3, scale=2) == (3, 2)  # halves round up
    assert working_size(10, 10, scale=1) == (10, 10)
    with pytest.raises(AnyresError, match="needs at least 8 pixels per side"):
        working_size(40, 36, scale=1e9)  # would be 1x1
    with pytest.raises(AnyresError, match="needs at least 8"):
        working_size(3000, 4000, long_side=4)
    for bad in (dict(long_side=0), dict(scale=0.5), dict(), dict(long_side=5, scale=2)):
        with pytest.raises(AnyresError):
            working_size(10, 10, **bad)


def test_bicubic_path_is_down_enhance_up():
    x = torch.rand(1, 3, 40, 30)
    out = enhance_rgb(_Identity(), x, working=(20, 15))
    ref = imresize(imresize(x, size=(20, 15)).clamp(0, 1), size=(40, 30)).clamp(0, 1)
    torch.testing.assert_close(out, ref, atol=0, rtol=0)
    assert torch.equal(enhance_rgb(_Identity(), x), x.clamp(0, 1))  # no working size: full resolution
    assert torch.equal(enhance_rgb(_Identity(), x, working=(40, 30)), x)


def test_lmar_path_uses_the_resampler_and_lanczos_up(tmp_path):
    torch.manual_seed(0)
    lmar = LMAR(LMARConfig(hidden=[8])).eval()
    folder = save_network(lmar, tmp_path / "lmar")
    sampler = load_resampler("lmar", folder)
    x = torch.rand(1, 3, 24, 18)
    out = enhance_rgb(_Identity(), x, working=(12, 9), resampler=sampler)
    with torch.no_grad():
        small = lmar(x, (12, 9)).clamp(0, 1)
    ref = imresize(small, size=(24, 18), kernel="lanczos3").clamp(0, 1)
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=0)
    assert not torch.allclose(out, enhance_rgb(_Identity(), x, working=(12, 9)))
    with pytest.raises(AnyresError, match="needs its weights"):
        load_resampler("lmar")
    with pytest.raises(AnyresError, match="only applies"):
        load_resampler("bicubic", folder)
    with pytest.raises(AnyresError, match="not an LMAR"):
        load_resampler("lmar", save_network(UNetEnhancer(width=2, levels=2), tmp_path / "unet"))


def _png(path, w, h, seed=0):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def test_cli_working_size_keeps_the_size_and_refuses_bad_combinations(tmp_path):
    unet = save_network(UNetEnhancer(width=2, levels=2), tmp_path / "unet")
    src = _png(tmp_path / "in.png", 64, 40)
    run = lambda *a: CliRunner().invoke(main, ["enhance", str(src), "--model", str(unet), *map(str, a)])  # noqa: E731
    res = run("-o", tmp_path / "out.png", "--working-size", 32)
    assert res.exit_code == 0, res.output
    assert Image.open(tmp_path / "out.png").size == (64, 40)
    res = run("-o", tmp_path / "x.png", "--resampler", "lmar")
    assert res.exit_code == 1 and "add --working-size" in res.output and not (tmp_path / "x.png").exists()
    res = run("-o", tmp_path / "x.png", "--working-size", 32, "--resampler", "lmar")
    assert res.exit_code == 1 and "--resampler-model" in res.output and not (tmp_path / "x.png").exists()


def test_evaluate_working_scale_records_the_path(tmp_path):
    from anyres.evaluation import evaluate

    data = tmp_path / "hr"
    data.mkdir()
    for i in range(2):
        _png(data / f"{i}.png", 48, 36, seed=i)
    unet = save_network(UNetEnhancer(width=2, levels=2), tmp_path / "unet")
    full = evaluate(str(unet), data, task="lowlight", seed=1, progress=False)
    small = evaluate(
        str(unet), data, task="lowlight", seed=1, working_scale=2.0, progress=False, json_path=tmp_path / "r.json"
    )
    assert small["working"] == {"scale": 2.0, "resampler": "bicubic"} and "working" not in full
    a, b = full["results"][0], small["results"][0]
    assert a["input_psnr"] == b["input_psnr"] and a["psnr"] != b["psnr"]
    assert json.loads((tmp_path / "r.json").read_text())["working"]["scale"] == 2.0
    with pytest.raises(AnyresError, match="apply to enhancement"):
        evaluate("bicubic", data, scales=[2], working_scale=2.0, progress=False)


@pytest.mark.slow
def test_large_image_path_stays_under_3_gb():
    # A fresh process, so that the peak RSS is this call's: 4000 x 3000 enhanced at a 512 working size.
    code = textwrap.dedent("""
        import resource, torch
        torch.set_num_threads(1)
        from anyres.enhancement.api import enhance_rgb
        from anyres.enhancement.unet import UNetEnhancer
        x = torch.rand(1, 3, 3000, 4000)
        out = enhance_rgb(UNetEnhancer(width=4, levels=2).eval(), x, working=(384, 512))
        assert out.shape == (1, 3, 3000, 4000)
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    peak_mb = int(res.stdout.strip().splitlines()[-1]) / 1024
    assert peak_mb < 3 * 1024, peak_mb
