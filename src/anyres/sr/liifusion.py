"""LIIFusion (Hwang, Lee & Kim, JBE 2024): LIIF conditioned on an HR prior vector by window cross-attention.

Stage 1: a prior encoder maps ``[bicubic-up LR, HR]`` to ``z`` ``(B, 4C)``, injected into the latent map
``(B, C, h, w)`` by shifted-window cross-attention before LIIF decoding. Stage 2 (``stage: 2``) samples ``z``
from the LR alone with a 4-step diffusion model. Layers, the LR-only fallback and the differences from the
reference code: docs/methods/liifusion.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from anyres.nn.blocks import ResBlock, conv3x3
from anyres.nn.windows import PriorWindowLayer, pad_to_multiple
from anyres.ops.resize import imresize
from anyres.registry import NETWORKS
from anyres.sr.liif import LIIF, LIIFConfig

__all__ = [
    "LIIFusion",
    "LIIFusionConfig",
    "PriorEncoder",
    "PriorInjector",
    "PriorDenoiser",
    "DiffusionSchedule",
    "sample_prior",
]

UNSHUFFLE = 4
PRIOR_EPS = 1e-5  # BatchNorm's, for prior_norm "windows"
UNSHUFFLE_CHANNELS = 16  # channels per pixel of a window stacked by PriorEncoder(pool="unshuffle")


@dataclass
class LIIFusionConfig(LIIFConfig):
    """LIIF's options plus the prior encoder and injector."""

    prior_dim: int = 256  # 4 C for C = 64
    prior_blocks: int = 6  # DiffIR's default n_encoder_res (its SR configs use 9)
    inject_depth: int = 6
    window: int = 8
    heads: int = 4
    mlp_ratio: float = 2.0
    # Variants (docs/methods/liifusion.md, "Making the prior count"): where the prior enters the window
    # layers ("queries": the LIIFusion code's; "features": DiffIR's, q/k/v and FFN inputs), whether the prior
    # is standardised ("batch": per dimension over images, running mean/variance, no affine; "windows": per
    # dimension over each image's own windows, no running statistics) and whether the
    # injector starts as the identity (its output conv zeroed, so a network initialised from LIIF starts
    # equal to it).
    inject: str = "queries"
    prior_norm: str = "none"
    start_identity: bool = False
    # With start_identity false: the injector's output conv at PyTorch's default init times this factor. A small
    # factor (0.1) starts the network near LIIF while the prior path still gets gradients well above Adam's eps.
    start_scale: float = 1.0
    # "image": one prior vector per image (the paper's); "window": one per injector window of the LR latent
    # map, pooled from the prior encoder's map over the HR region that window covers.
    prior_layout: str = "image"
    # "torch": PyTorch's layer defaults (the reference code's); "kaiming": He-normal for LeakyReLU(0.1)
    # (variance-preserving), the residual blocks' second convs x0.1, zero biases. The defaults shrink the
    # signal ~6x in variance per layer, so the raw prior's variance between images and windows is ~1e-6 (below
    # BatchNorm's eps): the prior encoder starts, and stays, nearly constant (docs/methods/liifusion.md).
    prior_init: str = "torch"
    # With prior_layout "window": how a window's vector is read from the prior encoder's map. "mean": averaged over
    # the window (spatial detail inside a window is lost); "unshuffle": a 1x1 conv to 16 channels, the window's
    # pixels stacked (pixel-unshuffle) and a Linear layer, so the vector can code where things are in the window.
    prior_pool: str = "mean"
    # With prior_layout "window": each window's prior also adds a per-pixel term to the latent map, one Linear
    # layer from the vector to the window's window x window x C features, zero-initialised (the network starts as
    # it would without it). A direct, linear path from the prior to every latent pixel (docs/methods/liifusion.md).
    prior_pixels: bool = False
    stage: int = 1  # 2 adds the LR condition encoder and the prior denoiser
    denoise_blocks: int = 5  # hidden Linear layers after the first (DiffIR's constructor default)
    timesteps: int = 4
    beta_start: float = 0.1
    beta_end: float = 0.99
    # Stage 2 runs the stage-1 prior encoder only in training, as the frozen target of the prior loss; a
    # shipped stage-2 folder (config.json ``hr_prior_encoder: false``) leaves it out and cannot train.
    hr_prior_encoder: bool = True

    def __post_init__(self) -> None:
        if self.window < 2 or self.inject_depth < 1 or self.prior_dim < 1:
            raise ValueError("LIIFusion needs window >= 2, inject_depth >= 1 and prior_dim >= 1")
        if self.inject not in ("queries", "features"):
            raise ValueError(f"LIIFusion inject must be 'queries' or 'features', got {self.inject!r}")
        if self.prior_norm not in ("none", "batch", "windows"):
            raise ValueError(f"LIIFusion prior_norm must be 'none', 'batch' or 'windows', got {self.prior_norm!r}")
        if self.prior_init not in ("torch", "kaiming"):
            raise ValueError(f"LIIFusion prior_init must be 'torch' or 'kaiming', got {self.prior_init!r}")
        if self.prior_layout not in ("image", "window"):
            raise ValueError(f"LIIFusion prior_layout must be 'image' or 'window', got {self.prior_layout!r}")
        if self.prior_pool not in ("mean", "unshuffle"):
            raise ValueError(f"LIIFusion prior_pool must be 'mean' or 'unshuffle', got {self.prior_pool!r}")
        if (self.prior_pool != "mean" or self.prior_pixels) and self.prior_layout != "window":
            raise ValueError("LIIFusion prior_pool 'unshuffle' and prior_pixels need prior_layout 'window'")
        if self.prior_norm == "windows" and self.prior_layout != "window":
            raise ValueError("LIIFusion prior_norm 'windows' needs prior_layout 'window'")
        if self.stage not in (1, 2):
            raise ValueError(f"LIIFusion stage must be 1 or 2, got {self.stage}")
        if self.timesteps < 1 or not 0 < self.beta_start <= self.beta_end < 1:
            raise ValueError("need timesteps >= 1 and 0 < beta_start <= beta_end < 1")
        if not 0 < self.start_scale <= 1:
            raise ValueError(f"LIIFusion start_scale must be in (0, 1], got {self.start_scale}")
        if not self.hr_prior_encoder and self.stage == 1:
            raise ValueError("LIIFusion stage 1 needs its prior encoder (hr_prior_encoder: true)")


class PriorEncoder(nn.Module):
    """``(lr_up, hr)`` -> prior ``(B, prior_dim)``; both ``(B, 3, H, W)`` in [0, 1] (see module doc).

    With ``window`` set, the prior is a map ``(B, ceil(h / window), ceil(w / window), prior_dim)`` for an LR
    latent map of size ``lr_size = (h, w)``: the conv features, resampled to ``(h, w)``, averaged per window
    (a window at the border averages only its pixels inside the map), then the MLP per window. With
    ``pool="unshuffle"`` the window's features are reduced to 16 channels by a 1x1 conv and stacked pixel by
    pixel (zero-padded at the border) into one ``16 * window**2`` vector, mapped to ``prior_dim`` by a Linear
    layer before the MLP: the vector can then tell pixels of a window apart."""

    def __init__(
        self,
        in_images: int = 2,
        feats: int = 64,
        blocks: int = 6,
        prior_dim: int = 256,
        norm: str = "none",
        window: int | None = None,
        init: str = "torch",
        pool: str = "mean",
    ):
        super().__init__()
        self.in_images = in_images
        self.window = window
        self.pool = pool
        cin = 3 * in_images * UNSHUFFLE * UNSHUFFLE
        act = nn.LeakyReLU(0.1, inplace=True)
        self.body = nn.Sequential(
            conv3x3(cin, feats),
            act,
            *[ResBlock(feats) for _ in range(blocks)],
            conv3x3(feats, 128),
            act,
            conv3x3(128, 128),
            act,
            conv3x3(128, prior_dim),
            act,
        )
        self.mlp = nn.Sequential(
            nn.Linear(prior_dim, prior_dim),
            nn.LeakyReLU(0.1, inplace=True),
            nn.Linear(prior_dim, prior_dim),
            nn.LeakyReLU(0.1, inplace=True),
        )
        if pool == "unshuffle":
            if window is None:
                raise ValueError("an unshuffled prior needs a window")
            self.reduce = nn.Conv2d(prior_dim, UNSHUFFLE_CHANNELS, 1)
            self.stack = nn.Linear(UNSHUFFLE_CHANNELS * window * window, prior_dim)
        # "batch": z standardised per dimension over images (running statistics at inference), so that what
        # one image's prior has in common with every other's is removed before it reaches the injector.
        # "windows": each image's window vectors standardised per dimension over that image's windows, with its
        # own statistics in training and inference alike (no running statistics to lag behind).
        self.norm = nn.BatchNorm1d(prior_dim, affine=False) if norm == "batch" else nn.Identity()
        self.per_image = norm == "windows"
        if init == "kaiming":
            for m in self.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    nn.init.kaiming_normal_(m.weight, a=0.1, mode="fan_in", nonlinearity="leaky_relu")
                    nn.init.zeros_(m.bias)
            for m in self.modules():
                if isinstance(m, ResBlock):
                    m.conv2.weight.data.mul_(0.1)

    def forward(self, *images: torch.Tensor, lr_size: Sequence[int] | None = None) -> torch.Tensor:
        return self.normalise(self.unnormalised(*images, lr_size=lr_size))

    def normalise(self, z: torch.Tensor) -> torch.Tensor:
        """``norm`` over every prior vector of ``z`` ``(..., prior_dim)`` (each window counts as a sample), or
        with ``"windows"`` over the windows of each image of ``z`` ``(B, gh, gw, prior_dim)``."""
        if self.per_image:
            var, mean = torch.var_mean(z, dim=(1, 2), unbiased=False, keepdim=True)
            return (z - mean) * torch.rsqrt(var + PRIOR_EPS)
        return self.norm(z.reshape(-1, z.shape[-1])).reshape(z.shape)

    def unnormalised(self, *images: torch.Tensor, lr_size: Sequence[int] | None = None) -> torch.Tensor:
        """The prior before ``norm`` (a batch of one image can then be standardised with others)."""
        if len(images) != self.in_images:
            raise ValueError(f"prior encoder takes {self.in_images} images, got {len(images)}")
        x = torch.cat([(im - 0.5) / 0.5 for im in images], dim=1)
        h, w = x.shape[-2:]
        x = F.pad(x, (0, -w % UNSHUFFLE, 0, -h % UNSHUFFLE), mode="replicate")
        feat = self.body(F.pixel_unshuffle(x, UNSHUFFLE))
        if self.window is None:
            return self.mlp(feat.mean(dim=(-2, -1)))
        if lr_size is None:
            raise ValueError("a per-window prior needs the LR map size (lr_size)")
        return self.mlp(self.pool_windows(F.adaptive_avg_pool2d(feat, tuple(lr_size))))

    def pool_windows(self, feat: torch.Tensor) -> torch.Tensor:
        """``(B, prior_dim, h, w)`` map at the LR size -> ``(B, gh, gw, prior_dim)``, one vector per window
        (before the MLP), by ``pool``."""
        assert self.window is not None
        if self.pool == "unshuffle":
            h, w = feat.shape[-2:]
            feat = F.pad(self.reduce(feat), (0, -w % self.window, 0, -h % self.window))
            return self.stack(F.pixel_unshuffle(feat, self.window).permute(0, 2, 3, 1))
        return F.avg_pool2d(feat, self.window, ceil_mode=True).permute(0, 2, 3, 1)


class PriorInjector(nn.Module):
    """``(B, C, h, w)`` map and ``(B, P)`` prior -> prior-injected map of the same shape."""

    def __init__(
        self,
        dim: int = 64,
        prior_dim: int = 256,
        depth: int = 6,
        window: int = 8,
        heads: int = 4,
        mlp_ratio: float = 2.0,
        inject: str = "queries",
        start_identity: bool = False,
        start_scale: float = 1.0,
        pixels: bool = False,
    ):
        super().__init__()
        self.window = window
        # prior_pixels: window vector -> the window's (window, window, dim) features, added before the layers
        self.pixels = nn.Linear(prior_dim, window * window * dim) if pixels else None
        if self.pixels is not None:
            nn.init.zeros_(self.pixels.weight)
            nn.init.zeros_(self.pixels.bias)
        self.layers = nn.ModuleList(
            PriorWindowLayer(
                dim, prior_dim, window, shift=(window // 2) * (i % 2), heads=heads, mlp_ratio=mlp_ratio, inject=inject
            )
            for i in range(depth)
        )
        self.conv = conv3x3(dim, dim)
        if start_identity:
            nn.init.zeros_(self.conv.weight)
            nn.init.zeros_(self.conv.bias)
        elif start_scale != 1.0:
            with torch.no_grad():
                self.conv.weight.mul_(start_scale)
                self.conv.bias.mul_(start_scale)

    def forward(self, feat: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        """``prior``: ``(B, P)``, or ``(B, gh, gw, P)`` per window; a map of another grid (another image's
        prior) is resampled to this map's windows (nearest)."""
        x, (h, w) = pad_to_multiple(feat, self.window)
        if prior.dim() == 4:
            grid = (x.shape[-2] // self.window, x.shape[-1] // self.window)
            if tuple(prior.shape[1:3]) != grid:
                prior = F.interpolate(prior.permute(0, 3, 1, 2), size=grid, mode="nearest").permute(0, 2, 3, 1)
        if self.pixels is not None:
            x = x + self.pixel_term(prior, x.shape[-2:])
        y = x.permute(0, 2, 3, 1)
        for layer in self.layers:
            y = layer(y, prior)
        y = self.conv(y.permute(0, 3, 1, 2).contiguous()) + x
        return y[..., :h, :w]

    def pixel_term(self, prior: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
        """``(B, C, H, W)`` term that ``prior_pixels`` adds to a map padded to ``size`` (multiples of the window):
        window ``(i, j)``'s vector, mapped by ``self.pixels``, laid out as that window's pixels."""
        assert self.pixels is not None
        ws, (h, w) = self.window, size
        if prior.dim() == 2:
            prior = prior[:, None, None, :].expand(-1, h // ws, w // ws, -1)
        b, gh, gw, _ = prior.shape
        t = self.pixels(prior).reshape(b, gh, gw, ws, ws, -1)
        return t.permute(0, 5, 1, 3, 2, 4).reshape(b, -1, gh * ws, gw * ws)


class DiffusionSchedule:
    """DiffIR's short schedule: ``beta_t = (linspace(sqrt(start), sqrt(end), T))_t ** 2`` (LDM's "linear"),
    ``alpha_bar_t = prod(1 - beta)``, and the coefficients of the posterior mean
    ``mu(x0, x_t) = coef1_t x0 + coef2_t x_t``. For T = 4, (0.1, 0.99): beta = [0.1, 0.2943, 0.5910, 0.99],
    alpha_bar = [0.9, 0.6351, 0.2598, 0.0026]. Float64 buffers, cast on use."""

    def __init__(self, timesteps: int = 4, start: float = 0.1, end: float = 0.99):
        self.timesteps = timesteps
        betas = torch.linspace(start**0.5, end**0.5, timesteps, dtype=torch.float64) ** 2
        alphas = 1 - betas
        abar = torch.cumprod(alphas, 0)
        abar_prev = torch.cat([torch.ones(1, dtype=torch.float64), abar[:-1]])
        self.betas, self.alphas_cumprod = betas, abar
        self.coef1 = betas * abar_prev.sqrt() / (1 - abar)
        self.coef2 = (1 - abar_prev) * alphas.sqrt() / (1 - abar)

    def noisy_start(self, x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """``x_T = sqrt(alpha_bar_T) x0 + sqrt(1 - alpha_bar_T) noise`` (the training forward of DiffIR)."""
        a = float(self.alphas_cumprod[-1])
        return a**0.5 * x0 + (1 - a) ** 0.5 * noise


class PriorDenoiser(nn.Module):
    """Predicts the clean prior from ``[condition, t / (10 T), x_t]``: Linear(2P + 1 -> P) + LeakyReLU(0.1),
    then ``blocks`` x (Linear(P -> P) + LeakyReLU(0.1)) with no residual (DiffIR's "ResMLP")."""

    def __init__(self, prior_dim: int = 256, blocks: int = 5, timesteps: int = 4):
        super().__init__()
        self.timesteps = timesteps
        layers: list[nn.Module] = [nn.Linear(2 * prior_dim + 1, prior_dim), nn.LeakyReLU(0.1, inplace=True)]
        for _ in range(blocks):
            layers += [nn.Linear(prior_dim, prior_dim), nn.LeakyReLU(0.1, inplace=True)]
        self.net = nn.Sequential(*layers)

    def forward(self, cond: torch.Tensor, t: int, x_t: torch.Tensor) -> torch.Tensor:
        """``cond``, ``x_t``: ``(..., P)`` (one vector per image, or per window: the same MLP on each)."""
        tt = torch.full((*x_t.shape[:-1], 1), t / (10 * self.timesteps), dtype=x_t.dtype, device=x_t.device)
        return self.net(torch.cat([cond, tt, x_t], dim=-1))


def sample_prior(
    denoiser: PriorDenoiser, cond: torch.Tensor, schedule: DiffusionSchedule, x_t: torch.Tensor
) -> torch.Tensor:
    """Run the reverse chain from ``x_T``: at each step ``x0_hat = denoiser(cond, t, x_t)`` and
    ``x_{t-1} = coef1_t x0_hat + coef2_t x_t`` (the posterior mean; no noise is added, so the chain is a
    deterministic function of ``x_T``). Returns the last ``x0_hat``. Differentiable (stage 2 trains
    through all steps)."""
    x0 = x_t
    for t in reversed(range(schedule.timesteps)):
        x0 = denoiser(cond, t, x_t)
        x_t = float(schedule.coef1[t]) * x0 + float(schedule.coef2[t]) * x_t
    return x0


class LIIFusion(LIIF):
    """Stage-1 LIIFusion: ``encode(lr, prior)`` -> injected latent map; the rest is LIIF's query interface.

    ``prior_from(lr, hr)`` computes the HR prior of one image (or a batch of equal-size images);
    ``forward(lr, coord, cell, prior=...)`` decodes with a given prior (training passes the HR prior).
    """

    config_class = LIIFusionConfig
    uses_hr_prior = True  # the trainer hands the HR crops to prior_batch

    def __init__(self, config: LIIFusionConfig | dict[str, Any] | None = None, **kwargs: Any):
        super().__init__(config, **kwargs)
        cfg = self.config
        c = self.encoder.out_dim
        window = cfg.window if cfg.prior_layout == "window" else None
        self.prior_encoder = (
            PriorEncoder(2, 64, cfg.prior_blocks, cfg.prior_dim, cfg.prior_norm, window, cfg.prior_init, cfg.prior_pool)
            if cfg.hr_prior_encoder
            else None
        )
        self.injector = PriorInjector(
            c,
            cfg.prior_dim,
            cfg.inject_depth,
            cfg.window,
            cfg.heads,
            cfg.mlp_ratio,
            cfg.inject,
            cfg.start_identity,
            cfg.start_scale,
            cfg.prior_pixels,
        )
        self.init_new_modules: tuple[str, ...] = ("prior_encoder.", "injector.")  # stage 1 from a LIIF file
        self.schedule = DiffusionSchedule(cfg.timesteps, cfg.beta_start, cfg.beta_end)
        if cfg.stage == 2:
            self.condition_encoder = PriorEncoder(
                1, 64, cfg.prior_blocks, cfg.prior_dim, window=window, init=cfg.prior_init, pool=cfg.prior_pool
            )
            self.denoiser = PriorDenoiser(cfg.prior_dim, cfg.denoise_blocks, cfg.timesteps)
            if self.prior_encoder is not None:
                self.prior_encoder.requires_grad_(False)  # stage 2's target: the frozen stage-1 prior encoder
            self.init_new_modules = ("condition_encoder.", "denoiser.")  # not in a stage-1 file

    def config_dict(self) -> dict[str, Any]:
        return {"arch": "liifusion", **asdict(self.config)}

    # Windows are laid out from the map's origin and the prior is pooled over the image, so a tile would not
    # see what the whole image sees: :func:`anyres.sr.render.render` renders this network in one pass.
    tile_invariant = False

    def prior_from(self, lr: torch.Tensor, hr: torch.Tensor, normalise: bool = True) -> torch.Tensor:
        """``(B, P)`` prior of ``lr`` ``(B, 3, h, w)`` with its ground truth ``hr`` ``(B, 3, H, W)``, or
        ``(B, ceil(h / window), ceil(w / window), P)`` with ``prior_layout: window`` (``normalise=False``:
        before the encoder's ``prior_norm``)."""
        if self.prior_encoder is None:
            raise RuntimeError(
                "this stage-2 LIIFusion was built without its HR prior encoder (hr_prior_encoder: "
                "false, as shipped); the stage-1 model it started from has the same one"
            )
        lr_up = imresize(lr, size=tuple(hr.shape[-2:]))
        if normalise:
            return self.prior_encoder(lr_up, hr, lr_size=lr.shape[-2:])
        return self.prior_encoder.unnormalised(lr_up, hr, lr_size=lr.shape[-2:])

    def prior_batch(
        self, lr: torch.Tensor, hrs: Sequence[torch.Tensor], generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The prior a training batch is decoded with, and its auxiliary loss.

        ``hrs[i]`` is sample ``i``'s HR crop ``(3, H_i, W_i)`` (sizes may differ). Stage 1: the HR prior, no
        auxiliary loss. Stage 2: the diffusion prior sampled from the LR condition, starting from the
        stage-1 prior ``z`` noised to ``x_T = sqrt(abar_T) z + sqrt(1 - abar_T) eps``, trained through all
        steps; the auxiliary loss is ``mean |prior - z|`` with ``z`` from the frozen stage-1 encoder.
        """
        raw = torch.cat([self.prior_from(lr[i : i + 1], hr[None], normalise=False) for i, hr in enumerate(hrs)])
        target = self.prior_encoder.normalise(raw)  # type: ignore[union-attr]  # prior_from checked it exists
        if self.config.stage == 1:
            return target, None
        target = target.detach()
        noise = torch.randn(target.shape, generator=generator, dtype=target.dtype).to(target.device)
        x_t = self.schedule.noisy_start(target, noise)
        prior = sample_prior(self.denoiser, self.condition_encoder(lr, lr_size=lr.shape[-2:]), self.schedule, x_t)
        return prior, (prior - target).abs().mean()

    def lr_prior(self, lr: torch.Tensor, seed: int = 0) -> torch.Tensor:
        """The prior when no HR is available. Stage 2: the 4-step diffusion sampler from ``x_T ~ N(0, I)``
        drawn with ``seed`` (the same seed gives the same prior and the same image). Stage 1: the prior
        encoder with the LR standing in for both inputs (a fallback; see the module doc)."""
        if self.config.stage == 1:
            return self.prior_encoder(lr, lr, lr_size=lr.shape[-2:])
        cond = self.condition_encoder(lr, lr_size=lr.shape[-2:])
        g = torch.Generator().manual_seed(seed)
        x_t = torch.randn(cond.shape, generator=g).to(lr.device, lr.dtype)
        return sample_prior(self.denoiser, cond, self.schedule, x_t)

    def encode(self, lr: torch.Tensor, prior: torch.Tensor | None = None, seed: int = 0) -> torch.Tensor:
        feat = super().encode(lr)
        if prior is None:
            prior = self.lr_prior(lr, seed)
        return self.injector(feat, prior.to(feat.dtype))


@NETWORKS.register(
    "liifusion",
    "LIIFusion stage 1: LIIF with an HR prior vector injected by window cross-attention",
    role="upscaler",
    example={
        "encoder": {"name": "edsr-baseline", "args": {"n_resblocks": 1, "n_feats": 8}},
        "hidden": [16, 16],
        "prior_dim": 16,
        "prior_blocks": 1,
        "inject_depth": 2,
        "window": 4,
        "heads": 2,
    },
)
def build_liifusion(**kwargs: Any) -> LIIFusion:
    return LIIFusion(LIIFusionConfig.from_dict(kwargs))


build_liifusion.config_class = LIIFusionConfig
