"""Arbitrary-scale SR recipe (LIIF, DIINN, LIIFusion; blind SR with ``data.degradation``): config and step.

Each iteration draws ``batch_size / world`` random-scale crops with sampled query pixels from a generator
seeded by ``(seed, rank, iteration)`` (:class:`~anyres.sr.data.RandomScaleSampler`): ``lr`` ``(B, 3, p, p)``
in [0, 1], ``coord`` ``(B, Q, 2)`` in [-1, 1], ``gt`` ``(B, Q, 3)`` in [0, 1]. The pixel loss is scaled to the
paper's [-1, 1] space, ``2 |pred - gt|`` (L1) or ``4 (pred - gt)^2`` (MSE), plus, when set, the
LIIFusion prior L1, VGG16 perceptual MSE and a relativistic GAN term with its own discriminator step.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from typing import Annotated, Any, Literal

import torch
from pydantic import Field, model_validator

from anyres.degrade.base import derive_seed
from anyres.errors import ConfigError

# Imported up front, not lazily at the first validation: a long run must not pick up half-edited code.
from anyres.evaluation import evaluate
from anyres.hub import save_network
from anyres.nn.precision import ENV as PRECISION_ENV
from anyres.nn.precision import bf16_fast
from anyres.registry import NETWORKS
from anyres.sr.data import RandomScaleSampler, load_hr_folders
from anyres.sr.render import LIIFUpscaler
from anyres.train.config import ConfigModel, Count, Milestones, PositiveFloat, PositiveInt, RunConfig, register_task
from anyres.train.engine import (
    BatchStream,
    Recipe,
    distributed,
    ema_update,
    load_init_weights,
    milestone_lr,
    stderr_log,
    train_device,
    update,
)

__all__ = ["TrainConfig", "DataConfig", "OptimConfig", "ValConfig", "PerceptualConfig", "SRRecipe"]


class DataConfig(ConfigModel):
    train: list[str] = Field(default_factory=list)  # folders of HR images
    patch: PositiveInt = 48  # LR patch side
    scale_min: PositiveFloat = 1.0
    scale_max: PositiveFloat = 4.0
    queries: PositiveInt = 2304  # sampled HR pixels per patch
    augment: bool = True
    degradation: Any = None  # None: bicubic LR; else a pipeline name or {name, args}
    query_layout: Literal["random", "patch"] = "random"  # "patch": a contiguous sqrt(queries)^2 window (GAN/VGG)
    # Real-ESRGAN's unsharp-masked targets: LR made from, and pixel/perceptual losses against, the sharpened
    # HR crop; the discriminator's real images stay unsharpened (docs/methods/liif-real-gan.md)
    sharpen_gt: bool = False


class OptimConfig(ConfigModel):
    lr: PositiveFloat = 1e-4
    milestones: Milestones = Field(default_factory=list)  # iterations at which lr *= gamma
    gamma: PositiveFloat = 0.5
    warmup: Count = 0  # iterations of linear lr warm-up (fine-tuning)
    # lr multiplier for the modules a network adds on top of its init file (its init_new_modules, e.g.
    # LIIFusion's prior encoder and injector started from a LIIF), which start from scratch
    new_modules_lr_scale: PositiveFloat = 1.0
    # [start, end]: from `start` the rate falls linearly to 0 at `end` (warm-up, stable, decay). A branch of
    # a long constant-rate run, resumed from its state with a cooldown, gives a model to ship while the run
    # itself goes on at its rate (docs/training.md, "Cooling down a long run").
    cooldown: list[Annotated[int, Field(ge=0)]] | None = None

    @model_validator(mode="after")
    def _check_cooldown(self) -> OptimConfig:
        if self.cooldown is not None and (len(self.cooldown) != 2 or self.cooldown[0] >= self.cooldown[1]):
            raise ValueError(f"optim.cooldown must be [start, end] with start < end, got {self.cooldown}")
        return self


class ValConfig(ConfigModel):
    data: str | None = None  # folder of HR images (benchmark protocol)
    scales: list[PositiveFloat | PositiveInt] = Field(default_factory=lambda: [2.0, 3.0, 4.0])
    every: Count = 1000  # iterations


class PerceptualConfig(ConfigModel):
    """VGG16 feature loss: the layers, their weights and the distance (see :class:`~anyres.train.losses.PerceptualLoss`)."""

    layers: list[str] = Field(default_factory=lambda: ["relu5_3"])
    weights: list[float] | None = None  # one per layer; default 1 each
    criterion: Literal["mse", "l1", "lpips"] = "mse"  # lpips: LPIPS-VGG16, its own layers and weights

    @model_validator(mode="after")
    def _check_layers(self) -> PerceptualConfig:
        from anyres.metrics.lpips import VGG16_LAYERS
        from anyres.train.losses import perceptual_layers

        unknown = [name for name in self.layers if name not in VGG16_LAYERS]
        if unknown or not self.layers:
            raise ValueError(f"perceptual.layers must be VGG16 layer names such as relu5_3 or conv4_3, got {unknown}")
        given = self.layers if "layers" in self.model_fields_set else None
        layers, _ = perceptual_layers(given, self.weights, self.criterion)
        self.__dict__["layers"] = list(layers)  # not an assignment: that would re-validate
        return self


class TrainConfig(RunConfig):
    name: str = "liif"
    model: dict[str, Any] = Field(default_factory=lambda: {"name": "liif", "args": {}})
    data: DataConfig = Field(default_factory=DataConfig)
    batch_size: PositiveInt = 16
    iterations: Count = 1000
    optim: OptimConfig = Field(default_factory=OptimConfig)
    precision: Literal["bf16", "fp32"] = "bf16"  # bf16: bf16 encoder autocast + bf16 MLP hidden layers; fp32: exact
    val: ValConfig = Field(default_factory=ValConfig)
    checkpoint_minutes: PositiveFloat = 5.0
    log_every: PositiveInt = 50
    seed: Count = 0
    threads: PositiveInt | None = None
    out_dir: str = "runs/liif"
    init: str | None = None  # weights folder to start from (fine-tuning); ignored when resuming
    prior_weight: float = 0.05  # LIIFusion stage 2: weight of the prior (diffusion) L1 loss
    pixel_loss: Literal["l1", "mse"] = "l1"  # "mse" for LIIFusion stage 2 (the paper's eq. 9)
    perceptual_weight: float = 0.0  # VGG16 feature loss, by default relu5_3 MSE (needs data.query_layout: patch)
    perceptual: PerceptualConfig = Field(default_factory=PerceptualConfig)
    gan_weight: float = 0.0  # relativistic GAN loss with a U-Net discriminator (needs patch queries)
    discriminator: dict[str, Any] = Field(default_factory=lambda: {"channels": 64})
    # decay of an exponential moving average of the network's weights (0: none; Real-ESRGAN: 0.999). With it,
    # validation and the weights folder `model/` use the average and `model-raw/` holds the trained weights.
    ema: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0

    @model_validator(mode="after")
    def _image_losses_need_patches(self) -> TrainConfig:
        if (self.perceptual_weight or self.gan_weight) and self.data.query_layout != "patch":
            raise ValueError("perceptual and GAN losses need data.query_layout: patch (image-shaped queries)")
        return self


def _batch_generator(seed: int, rank: int, iteration: int) -> torch.Generator:
    # Python's hash of a tuple of ints is deterministic across runs (no hash randomisation for ints).
    return torch.Generator().manual_seed(hash((seed, rank, iteration)) & 0x7FFF_FFFF_FFFF_FFFF)


def _sr_batch(sampler: RandomScaleSampler, size: int, seed: int, rank: int, iteration: int) -> Any:
    return sampler.sample(size, _batch_generator(seed, rank, iteration))


class SRRecipe(Recipe):
    """The network (channels-last, DDP-wrapped under torchrun), Adam, the sampler and the optional
    discriminator and VGG loss of one SR run. ``images``: ``(3, H, W)`` uint8 instead of ``data.train``."""

    def __init__(
        self, config: TrainConfig, images: list[torch.Tensor] | None = None, log: Callable[[str], None] | None = None
    ):
        self.config = config
        self.world, self.rank = distributed()
        if config.batch_size % self.world:
            raise ConfigError(f"batch_size {config.batch_size} is not divisible by {self.world} processes")
        torch.manual_seed(config.seed)  # identical initial weights on every rank
        spec = config.model
        self.net = NETWORKS.build(spec["name"], **spec.get("args", {}))
        if config.init:
            load_init_weights(self.net, config.init, tuple(getattr(self.net, "init_new_modules", ())))
        self.device = train_device(config.device)
        self.net = self.net.to(self.device, memory_format=torch.channels_last)
        self.model = self.net
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model = torch.nn.parallel.DistributedDataParallel(self.net, device_ids=ids)
        self.optim = torch.optim.Adam(self._param_groups(), lr=config.optim.lr)
        self.modules, self.optimizers = {"model": self.net}, {"optim": (self.optim, self.net)}
        self.ema_net = None
        if config.ema:
            self.ema_net = copy.deepcopy(self.net).requires_grad_(False)
            self.modules["ema"] = self.ema_net
        self.disc, self.perceptual = None, None
        if config.gan_weight:
            from anyres.train.losses import UNetDiscriminator

            self.disc = UNetDiscriminator(**config.discriminator).to(self.device, memory_format=torch.channels_last)
            self.modules["disc"] = self.disc
            self.optimizers["optim_disc"] = (torch.optim.Adam(self.disc.parameters(), lr=config.optim.lr), self.disc)
        if config.perceptual_weight:
            from anyres.train.losses import PerceptualLoss

            p = config.perceptual
            self.perceptual = PerceptualLoss(p.layers, p.weights, p.criterion).to(self.device)
        d = config.data
        if images is None:
            images = load_hr_folders(d.train)
        self.sampler = RandomScaleSampler(
            images,
            d.patch,
            d.scale_min,
            d.scale_max,
            d.queries,
            d.augment,
            degradation=d.degradation,
            return_hr=getattr(self.net, "uses_hr_prior", False),
            query_layout=d.query_layout,
            sharpen_gt=d.sharpen_gt,
        )
        self.batches = BatchStream(
            functools.partial(_sr_batch, self.sampler, config.batch_size // self.world, config.seed, self.rank),
            config.workers,
            self.device,
            stop=config.iterations,
        )
        self.validate_every = config.val.every if config.val.data else 0
        # bf16 only where it is native: elsewhere it is many times slower than float32 (anyres.nn.precision).
        self.bf16 = config.precision == "bf16" and bf16_fast(self.device)
        if config.precision == "bf16" and not self.bf16 and self.rank == 0:
            (log or stderr_log)(
                f"[{config.name}] precision bf16: {self.device.type} here has no native bf16, so the run computes in float32 "
                f"(set {PRECISION_ENV}=1 to force bf16)"
            )

    def _param_groups(self) -> list[dict[str, Any]]:
        scale = self.config.optim.new_modules_lr_scale
        fresh = tuple(getattr(self.net, "init_new_modules", ())) if self.config.init else ()
        if scale == 1.0 or not fresh:
            return [{"params": list(self.net.parameters())}]
        named = list(self.net.named_parameters())
        new = [p for n, p in named if n.startswith(fresh)]
        old = [p for n, p in named if not n.startswith(fresh)]
        return [{"params": old}, {"params": new, "lr_scale": scale}]

    def computes_in(self) -> str:
        return "bf16" if self.bf16 else "float32"

    def history_entry(self, iteration: int, window: list, mean: dict[str, float]) -> None:
        return None  # the history holds validation scores (scripts/ship_model.py reads them)

    def lr_at(self, iteration: int) -> float:
        o = self.config.optim
        # A fresh Adam state takes full-size steps at once; a warm-up keeps fine-tuning from wrecking the
        # initial weights in its first iterations.
        lr = milestone_lr(o.lr, iteration, o.milestones, o.gamma, o.warmup)
        if o.cooldown is not None:
            start, end = o.cooldown
            lr *= min(1.0, max(0.0, (end - iteration) / (end - start)))
        return lr

    def step(self, iteration: int) -> dict[str, float]:
        cfg = self.config
        batch = self.batches.get(iteration)
        lr = batch.lr.contiguous(memory_format=torch.channels_last)
        bf16 = self.bf16
        extra, aux = {}, None
        if batch.hr is not None:  # networks conditioned on a prior made from the HR crop (LIIFusion)
            g = torch.Generator().manual_seed(derive_seed(cfg.seed, f"prior/{self.rank}/{iteration}"))
            with torch.autocast(lr.device.type, dtype=torch.bfloat16, enabled=bf16):
                prior, aux = self.net.prior_batch(batch.lr, batch.hr, g)
            extra["prior"] = prior.float()
        pred = self.model(lr, batch.coord, batch.cell, mode="fast" if bf16 else "exact", encoder_bf16=bf16, **extra)
        pred = pred.float()
        if cfg.pixel_loss == "l1":
            # L1 in the network's [-1, 1] space, as in the paper (twice the L1 in [0, 1]).
            loss = 2.0 * (pred - batch.gt).abs().mean()
        else:  # MSE in the same space
            loss = 4.0 * (pred - batch.gt).square().mean()
        if aux is not None:  # LIIFusion stage 2: L1 of the sampled prior against the stage-1 prior
            loss = loss + cfg.prior_weight * aux.float()
        pred_img = gt_img = None
        if self.disc is not None or self.perceptual is not None:
            qs = self.sampler.query_side
            pred_img = pred.reshape(-1, qs, qs, 3).permute(0, 3, 1, 2)
            gt_img = batch.gt.reshape(-1, qs, qs, 3).permute(0, 3, 1, 2)
            real_img = gt_img if batch.gt_plain is None else batch.gt_plain.reshape(-1, qs, qs, 3).permute(0, 3, 1, 2)
        if self.perceptual is not None:
            loss = loss + cfg.perceptual_weight * self.perceptual(pred_img, gt_img)
        if self.disc is not None:
            from anyres.train.losses import ragan_g_loss

            self.disc.requires_grad_(False)
            with torch.autocast(lr.device.type, dtype=torch.bfloat16, enabled=bf16):
                adv = ragan_g_loss(self.disc(real_img), self.disc(pred_img))
            loss = loss + cfg.gan_weight * adv.float()
        update(self.optim, self.net, loss)
        if self.ema_net is not None:
            ema_update(self.ema_net, self.net, cfg.ema)
        if self.disc is not None:
            self._discriminator_step(real_img, pred_img.detach(), bf16)
        return {"loss": float(loss.detach())}

    def _discriminator_step(self, real: torch.Tensor, fake: torch.Tensor, bf16: bool) -> None:
        from anyres.train.losses import ragan_d_loss

        self.disc.requires_grad_(True)
        with torch.autocast(real.device.type, dtype=torch.bfloat16, enabled=bf16):
            d_loss = ragan_d_loss(self.disc(real), self.disc(fake))
        update(self.optimizers["optim_disc"][0], self.disc, d_loss.float())

    def fill_missing(self, prefix: str) -> bool:
        if prefix != "ema" or self.ema_net is None:
            return False
        # An average switched on when resuming a run that had none starts from the weights resumed.
        self.ema_net.load_state_dict(self.net.state_dict())
        return True

    @property
    def shipped_net(self) -> torch.nn.Module:
        """What validation scores and ``model/`` holds: the weight average when there is one."""
        return self.net if self.ema_net is None else self.ema_net

    def validate(self, iteration: int) -> dict[str, Any] | None:
        """Validation PSNR of what ``model/`` holds; with an average, ``psnr_raw`` is that of the trained weights."""
        v = self.config.val
        if not v.data:
            return None
        entry: dict[str, Any] = {"iteration": iteration, "psnr": self._validation_psnr(self.shipped_net)}
        if self.ema_net is not None:
            entry["psnr_raw"] = self._validation_psnr(self.net)
        return entry

    def _validation_psnr(self, net: torch.nn.Module) -> dict[str, float]:
        v = self.config.val
        net.eval()
        try:
            up = LIIFUpscaler(net, name=self.config.name, mode="fast")
            report = evaluate(up, v.data, v.scales, progress=False, device=str(self.device))
        finally:
            net.train()
        return {f"x{r['scale']:g}": round(r["psnr"], 3) for r in report["results"]}

    def save_outputs(self, engine: Any) -> None:
        extra = {"name": self.config.name, "iterations": engine.iteration}
        if self.ema_net is not None:
            save_network(self.net, self.out_dir / "model-raw", extra=extra)
            extra["ema"] = self.config.ema
        save_network(self.shipped_net, self.out_dir / "model", extra=extra)


register_task(None, TrainConfig, SRRecipe)
