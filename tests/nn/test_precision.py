import pytest
import torch

from anyres.nn.precision import ENV, bf16_fast, cpu_flags, resolve_mode
from anyres.sr.liif import LIIF
from conftest import tiny_liif_config

X86 = """processor\t: 0
vendor_id\t: AuthenticAMD
flags\t\t: fpu vme sse2 avx avx2 fma
processor\t: 1
flags\t\t: fpu vme sse2 avx avx2 fma avx512f avx512_bf16
"""
ARM = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes bf16 i8mm\nCPU implementer\t: 0x41\n"


def test_cpu_flags_reads_x86_and_arm_feature_lines():
    assert {"avx2", "avx512_bf16", "fma"} <= cpu_flags(X86)
    assert "AuthenticAMD" not in cpu_flags(X86)  # only the feature lines
    assert {"bf16", "asimd"} <= cpu_flags(ARM)
    assert cpu_flags("model name\t: AMD EPYC\n") == set()


@pytest.mark.parametrize("value,fast", [("0", False), ("1", True)])
def test_environment_overrides_detection(monkeypatch, value, fast):
    monkeypatch.setenv(ENV, value)
    assert bf16_fast("cpu") is fast
    assert resolve_mode("fast", "cpu") == ("fast" if fast else "exact")
    # Other modes are never changed.
    assert resolve_mode("exact", "cpu") == "exact" and resolve_mode("reference", "cpu") == "reference"


def test_fast_mode_without_native_bf16_is_float32_exactly(monkeypatch):
    net = LIIF(tiny_liif_config()).eval()
    lr = torch.rand(1, 3, 7, 9)
    coord = torch.rand(1, 40, 2) * 2 - 1
    cell = torch.full((1, 40, 2), 2 / 21)
    with torch.no_grad():
        exact = net(lr, coord, cell, mode="exact")
        monkeypatch.setenv(ENV, "0")
        fp32 = net(lr, coord, cell, mode="fast", encoder_bf16=True)
        monkeypatch.setenv(ENV, "1")
        bf16 = net(lr, coord, cell, mode="fast", encoder_bf16=True)
    assert torch.equal(fp32, exact)
    assert (bf16 - exact).abs().max() > 1e-4  # and with bf16 allowed, the bf16 path really runs
