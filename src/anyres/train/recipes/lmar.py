"""LMAR recipe (``task: lmar``): a resampler learns to downscale for one frozen enhancer (digest Sec. 2.5).

No ground truth: the enhancer ``E`` (weights folder ``enhancer``) is frozen and its encoder features on the
full-size crop supervise the LMAR output (:mod:`anyres.train.lmar_losses`). Iteration ``i`` draws, from a
generator seeded by ``(seed, i)``, one target side ``d`` (multiples of ``size_step`` with scale ``crop / d`` in
``(scale_min, scale_max]``, :func:`target_sides`) and ``batch_size`` crops ``x`` ``(B, 3, crop, crop)`` in
[0, 1], each damaged by ``data.task``. Generator step on ``x_c = LMAR(x, (d, d))`` with
``1 L_adv + 1 L_rc + 5000 L_fa + 1 L_edge``; then one LSGAN PatchGAN step with the plain resize ``D(x)`` as
real and ``x_c`` as fake. Both Adams: lr ``4e-4 * 0.75 ** (i // step_every)``. A resume against changed
enhancer weights is refused. Outputs: ``model/`` (loads with ``load_resampler("lmar", ...)``) with its card.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import torch
from pydantic import Field, field_validator, model_validator

from anyres.degrade.base import Draw, derive_seed
from anyres.enhancement.lmar import LMARConfig
from anyres.enhancement.tasks import get_task
from anyres.errors import AnyresError, ConfigError
from anyres.hub import CONFIG, WEIGHTS, save_network, write_card
from anyres.io import list_images, read_image
from anyres.ops.augment import flip
from anyres.ops.resize import imresize
from anyres.registry import NETWORKS
from anyres.train.config import ConfigModel, Count, PositiveFloat, PositiveInt, RunConfig, model_spec, register_task
from anyres.train.engine import BatchStream, Recipe, stderr_log, train_device, update
from anyres.train.lmar_losses import (
    LMARLossWeights,
    PatchDiscriminator,
    encoder_features,
    freeze,
    lmar_discriminator_loss,
    lmar_generator_loss,
)
from anyres.train.recipes.enhance import task_spec

__all__ = [
    "LMARTrainConfig",
    "LMARDataConfig",
    "LMAROptimConfig",
    "LMARLossConfig",
    "LMARRecipe",
    "TASK_KEY",
    "target_sides",
    "enhancer_fingerprint",
]

TASK_KEY = "lmar"  # the top-level ``task:`` value of an LMAR config
_MIN_SIDE = 16  # the PatchGAN needs sides >= 16 (four stride-2 convolutions)
Weight = Annotated[float, Field(ge=0, allow_inf_nan=False)]


def target_sides(crop: int, scale_min: float, scale_max: float, step: int = 8) -> list[int]:
    """The target sides ``d`` an iteration draws from: multiples of ``step`` with
    ``crop / scale_max <= d < crop / scale_min``, so that the scale ``crop / d`` is in ``(scale_min, scale_max]``.

    ``target_sides(1024, 1, 4, 8) == list(range(256, 1024, 8))``, the reference's ``randrange(256, 1024, 8)``.
    """
    return [d for d in range(step, crop + 1, step) if d * scale_max >= crop and d * scale_min < crop]


class LMARDataConfig(ConfigModel):
    train: list[str] = Field(default_factory=list)  # folders of photos (no targets needed)
    # File names (e.g. im_036.png) in those folders left out of training: the held-out benchmark photos.
    exclude: list[str] = Field(default_factory=list)
    # Damage applied to every crop before LMAR sees it: a task of anyres.enhancement.tasks as a name or
    # {name, args}, stored in the latter form; null trains on the clean crops.
    task: Any = Field(default_factory=lambda: {"name": "lowlight", "args": {}})
    crop: Annotated[int, Field(ge=_MIN_SIDE)] = 256  # HR crop side (the reference: 1024 from 3840x2160 frames)
    scale_min: float = 1.0  # target sides d satisfy crop / scale_max <= d < crop / scale_min
    scale_max: float = 4.0
    size_step: PositiveInt = 8  # d is a multiple of this (the reference: 8)
    augment: bool = False  # independent 50 % horizontal and vertical flips (the reference: none)

    @field_validator("task")
    @classmethod
    def _task(cls, value: Any) -> dict[str, Any] | None:
        return None if value is None else task_spec(value)

    @model_validator(mode="after")
    def _sides(self) -> LMARDataConfig:
        if not (
            math.isfinite(self.scale_min) and math.isfinite(self.scale_max) and 1.0 <= self.scale_min < self.scale_max
        ):
            raise ValueError(f"need 1 <= scale_min < scale_max, got {self.scale_min}, {self.scale_max}")
        sides = target_sides(self.crop, self.scale_min, self.scale_max, self.size_step)
        if not sides:
            raise ValueError(
                f"no multiple of {self.size_step} in [crop / scale_max, crop / scale_min) = "
                f"[{self.crop / self.scale_max:g}, {self.crop / self.scale_min:g})"
            )
        if sides[0] < _MIN_SIDE:
            raise ValueError(
                f"target sides go down to {sides[0]}, the discriminator needs >= {_MIN_SIDE}; "
                "raise crop or lower scale_max"
            )
        return self


class LMAROptimConfig(ConfigModel):
    lr: PositiveFloat = 4e-4  # both Adams (generator and discriminator)
    betas: list[Annotated[float, Field(ge=0, lt=1)]] = Field(
        default_factory=lambda: [0.9, 0.999], min_length=2, max_length=2
    )
    step_every: PositiveInt = 1000  # iterations between lr *= gamma (StepLR)
    gamma: PositiveFloat = 0.75


class LMARLossConfig(ConfigModel):
    """Weights of the generator terms (:class:`~anyres.train.lmar_losses.LMARLossWeights`); 0 skips a term."""

    adversarial: Weight = 1.0
    consistency: Weight = 1.0
    attention: Weight = 5000.0
    edge: Weight = 1.0
    colour: Weight = 0.0  # not the reference's: keeps each crop's mean colour (docs/methods/lmar.md)


class LMARTrainConfig(RunConfig):
    task: Literal["lmar"] = TASK_KEY
    name: str = "lmar"
    enhancer: str | None = None  # weights folder of the frozen enhancer (required)
    model: dict[str, Any] = Field(default_factory=lambda: {"name": "lmar", "args": {}})
    data: LMARDataConfig = Field(default_factory=LMARDataConfig)
    batch_size: PositiveInt = 1  # crops of one iteration share their target side d
    iterations: Count = 3000
    optim: LMAROptimConfig = Field(default_factory=LMAROptimConfig)
    loss: LMARLossConfig = Field(default_factory=LMARLossConfig)  # 0 adversarial: no discriminator step
    discriminator_channels: PositiveInt = 4  # the reference PatchGAN's width
    # "rms": the feature terms compare the enhancer's encoder maps in units of each channel's spread on the HR
    # crop ("none": raw, as the reference). An encoder with tiny or nearly input-blind features (DeepLPF with
    # its identity init) otherwise leaves only the GAN term to steer the resampler (docs/methods/lmar.md).
    feature_norm: Literal["none", "rms"] = "none"
    grad_checkpoint: bool = False  # recompute LMAR's row chunks in the backward pass (large crops)
    seed: Count = 0
    threads: PositiveInt | None = None
    checkpoint_minutes: PositiveFloat = 5.0
    log_every: PositiveInt = 25
    out_dir: str = "runs/lmar"

    @field_validator("enhancer")
    @classmethod
    def _enhancer(cls, value: str | None) -> str:
        if not value:
            raise ValueError("the weights folder of the enhancer LMAR is trained for is required")
        return value

    @field_validator("model")
    @classmethod
    def _lmar(cls, value: Any) -> dict[str, Any]:
        spec = model_spec(value, "{name: lmar, args: {...}}", name="lmar")
        LMARConfig.from_dict(spec["args"])  # TypeError/ValueError on bad arguments
        return spec


def enhancer_fingerprint(folder: str | Path) -> dict[str, Any]:
    """What identifies an enhancer weights folder: its path, architecture, run name and the SHA-256 of its
    ``model.safetensors``. Missing or unreadable folders are a :class:`~anyres.errors.ConfigError`."""
    folder = Path(folder)
    if not (folder / CONFIG).is_file() or not (folder / WEIGHTS).is_file():
        raise ConfigError(
            f"enhancer: {folder} is not a weights folder (expected {CONFIG} and {WEIGHTS}); train "
            f"the enhancer first and point 'enhancer' at its run's model folder"
        )
    try:
        config = json.loads((folder / CONFIG).read_text())
        digest = hashlib.sha256((folder / WEIGHTS).read_bytes()).hexdigest()
    except (OSError, ValueError) as err:
        raise ConfigError(f"enhancer: cannot read {folder} ({err})") from None
    config = config if isinstance(config, dict) else {}
    training = config.get("training") if isinstance(config.get("training"), dict) else {}
    return {
        "folder": str(folder),
        "arch": config.get("arch"),
        "name": config.get("name"),
        "iterations": config.get("iterations"),
        "task": training.get("task"),
        "sha256": digest,
    }


def _load_photos(folders: Sequence[str], exclude: Sequence[str], crop: int) -> tuple[list[torch.Tensor], int]:
    """``(3, H, W)`` uint8 photos of ``folders`` that hold a ``crop`` square, minus the ``exclude`` file names;
    also returns how many were read in all."""
    left_out = set(exclude)
    seen: set[str] = set()
    images, total = [], 0
    for folder in folders:
        if not Path(folder).is_dir():
            raise ConfigError(f"data.train: {folder} is not a folder of photos")
        for path in list_images(folder):
            if path.name in left_out:
                seen.add(path.name)
                continue
            total += 1
            img, _ = read_image(path)
            if min(img.shape[-2:]) < crop:
                continue
            if img.shape[1] == 1:
                img = img.expand(-1, 3, -1, -1)
            images.append(torch.round(img[0] * 255).to(torch.uint8))
    missing = sorted(left_out - seen)
    if missing:
        raise ConfigError(f"data.exclude: {missing} not found in data.train (a typo would train on held-out photos)")
    if not images:
        raise ConfigError(f"no photo in {list(folders)} holds a {crop}x{crop} crop")
    return images, total


@dataclasses.dataclass
class LMARBatches:
    """Batch ``i`` of an LMAR run, ``(x, d)``: the LMAR input ``(B, 3, crop, crop)`` float32 in [0, 1] (damaged
    crops when a task is set) and the target side; a pure function of ``(seed, i)``."""

    images: list[torch.Tensor]
    task: Any
    sides: list[int]
    crop: int
    augment: bool
    batch_size: int
    seed: int

    def draw_at(self, iteration: int) -> dict[str, Any]:
        """The random choices of an iteration as JSON: ``{"side": d, "samples": [{"image", "top", "left",
        "hflip", "vflip", "record"}, ...]}``."""
        g = torch.Generator().manual_seed(derive_seed(self.seed, f"lmar/batch/{iteration}"))
        draw = Draw(g)
        side = self.sides[draw.integer(0, len(self.sides) - 1)]
        samples = []
        for _ in range(self.batch_size):
            index = draw.integer(0, len(self.images) - 1)
            h, w = self.images[index].shape[-2:]
            top, left = draw.integer(0, h - self.crop), draw.integer(0, w - self.crop)
            hflip = draw.coin(0.5) if self.augment else False
            vflip = draw.coin(0.5) if self.augment else False
            record = self.task.sample(1, g)[0] if self.task is not None else None
            samples.append({"image": index, "top": top, "left": left, "hflip": hflip, "vflip": vflip, "record": record})
        return {"side": side, "samples": samples}

    def __call__(self, iteration: int) -> tuple[torch.Tensor, int]:
        drawn = self.draw_at(iteration)
        crop, crops = self.crop, []
        for s in drawn["samples"]:
            img = self.images[s["image"]][:, s["top"] : s["top"] + crop, s["left"] : s["left"] + crop]
            x = flip(img.to(torch.float32).div(255.0), s["hflip"], s["vflip"]).unsqueeze(0).contiguous()
            crops.append(self.task.apply(x, [s["record"]]) if self.task is not None else x)
        return torch.cat(crops), drawn["side"]


class LMARRecipe(Recipe):
    """The frozen enhancer, the LMAR network, the discriminator and their Adams of one run. ``images``:
    ``(3, H, W)`` uint8 photos instead of ``config.data.train`` (tests; ``exclude`` does not apply)."""

    rng_key = "lmar/rng"

    def __init__(
        self,
        config: LMARTrainConfig,
        images: list[torch.Tensor] | None = None,
        log: Callable[[str], None] | None = None,
    ):
        from anyres.enhancement.api import load_enhancer

        self.config = cfg = config
        log = log or stderr_log
        self.enhancer_info = enhancer_fingerprint(cfg.enhancer)
        try:
            self.enhancer = freeze(load_enhancer(cfg.enhancer))
            self.encoder = encoder_features(self.enhancer)
        except (AnyresError, TypeError) as err:
            raise ConfigError(f"enhancer: {err}") from None
        recorded = self.enhancer_info["task"]
        if cfg.data.task is not None and isinstance(recorded, dict) and recorded.get("name") != cfg.data.task["name"]:
            log(
                f"[{cfg.name}] warning: the enhancer was trained on {recorded.get('name')!r} damage, this run "
                f"damages crops with {cfg.data.task['name']!r}"
            )
        with torch.random.fork_rng(devices=[]):  # initial weights from the seed, the caller's RNG untouched
            torch.manual_seed(cfg.seed)
            self.net = NETWORKS.build("lmar", **cfg.model["args"])
            self.disc = PatchDiscriminator(cfg.discriminator_channels)
        self.device = train_device(cfg.device)
        for module in (self.enhancer, self.net, self.disc):
            module.to(self.device)
        betas = tuple(cfg.optim.betas)
        self.optim_g = torch.optim.Adam(self.net.parameters(), lr=cfg.optim.lr, betas=betas)
        self.optim_d = torch.optim.Adam(self.disc.parameters(), lr=cfg.optim.lr, betas=betas)
        self.modules = {"lmar": self.net, "disc": self.disc}
        self.optimizers = {"optim_g": (self.optim_g, self.net), "optim_d": (self.optim_d, self.disc)}
        self.weights = LMARLossWeights(**cfg.loss.to_dict())
        d = cfg.data
        self.task = get_task(d.task["name"], d.task["args"] or None) if d.task is not None else None
        self.sides = target_sides(d.crop, d.scale_min, d.scale_max, d.size_step)
        if images is None:
            images, total = _load_photos(d.train, d.exclude, d.crop)
            log(
                f"[{cfg.name}] {len(images)} of {total} photos hold a {d.crop}x{d.crop} crop"
                + (f" ({len(d.exclude)} held out)" if d.exclude else "")
            )
        self.images = [img for img in images if min(img.shape[-2:]) >= d.crop]
        if not self.images:
            raise ConfigError(f"no training image holds a {d.crop}x{d.crop} crop")
        self.make_batch = LMARBatches(self.images, self.task, self.sides, d.crop, d.augment, cfg.batch_size, cfg.seed)
        self.batches = BatchStream(self.make_batch, cfg.workers, self.device, stop=cfg.iterations)

    def lr_at(self, iteration: int) -> float:
        o = self.config.optim
        return o.lr * o.gamma ** (iteration // o.step_every)

    def draw_at(self, iteration: int) -> dict[str, Any]:
        """The random choices of an iteration (:meth:`LMARBatches.draw_at`)."""
        return self.make_batch.draw_at(iteration)

    def batch_at(self, iteration: int) -> tuple[torch.Tensor, int]:
        """``(x, d)`` of an iteration on the CPU (:class:`LMARBatches`)."""
        return self.make_batch(iteration)

    def plain_resize(self, hr: torch.Tensor, side: int) -> torch.Tensor:
        """``D(x)``, LMAR's own resize without the learned compensation: the discriminator's real examples."""
        c = self.net.config
        return imresize(hr, size=(side, side), kernel=c.resize_kernel, antialias=c.antialias)

    def step(self, iteration: int) -> dict[str, float]:
        """One generator and one discriminator update; returns the iteration's loss terms (unweighted, plus
        the weighted generator ``total`` and the discriminator's ``disc``)."""
        hr, side = self.batches.get(iteration)
        adversarial = self.weights.adversarial > 0
        x_c = self.net(hr, (side, side), checkpoint=self.config.grad_checkpoint)
        self.disc.requires_grad_(False)  # the generator's loss must not leave gradients in D
        try:
            terms = lmar_generator_loss(
                x_c, hr, self.encoder, self.disc if adversarial else None, self.weights, self.config.feature_norm
            )
        finally:
            self.disc.requires_grad_(True)
        update(self.optim_g, self.net, terms["total"])
        out = {k: float(v.detach()) for k, v in terms.items()}
        if adversarial:
            with torch.no_grad():
                x_d = self.plain_resize(hr, side)
            loss_d = lmar_discriminator_loss(self.disc, x_c, x_d)
            update(self.optim_d, self.disc, loss_d)
            out["disc"] = float(loss_d.detach())
        return out

    def describe(self, mean: dict[str, float]) -> str:
        parts = " ".join(
            f"{k} {mean[k]:.4g}" for k in ("consistency", "attention", "edge", "colour", "adversarial") if k in mean
        )
        disc = f" D {mean['disc']:.4f}" if "disc" in mean else ""
        return f"G {mean['total']:.4f} ({parts}){disc}"

    def metadata(self) -> dict[str, Any]:
        return {"enhancer": self.enhancer_info}

    def check_resume(self, meta: dict[str, Any], path: Path) -> None:
        was = (meta.get("enhancer") or {}).get("sha256")
        if was != self.enhancer_info["sha256"]:
            raise ConfigError(
                f"{path} was trained for another enhancer (weights sha256 {str(was)[:12]}, now "
                f"{self.enhancer_info['sha256'][:12]} in {self.config.enhancer}); use --restart"
            )

    def recipe(self, engine: Any) -> dict[str, Any]:
        cfg, d = self.config, self.config.data
        return {
            "enhancer": self.enhancer_info,
            "data": list(d.train),
            "exclude": list(d.exclude),
            "task": d.task,
            "crop": d.crop,
            "target_sides": [self.sides[0], self.sides[-1], d.size_step],
            "scale_range": [d.scale_min, d.scale_max],
            "augment": d.augment,
            "batch_size": cfg.batch_size,
            "iterations": engine.iteration,
            "planned_iterations": cfg.iterations,
            "loss_weights": dataclasses.asdict(self.weights),
            "discriminator_channels": cfg.discriminator_channels,
            "optimizer": {
                "name": "adam",
                "lr": cfg.optim.lr,
                "betas": list(cfg.optim.betas),
                "step_every": cfg.optim.step_every,
                "gamma": cfg.optim.gamma,
            },
            "seed": cfg.seed,
            "wall_time_hours": round(engine.elapsed / 3600, 3),
        }

    def save_outputs(self, engine: Any) -> None:
        """Write the LMAR weights folder ``out_dir/model`` (weights, config.json with the recipe, README.md)."""
        recipe = self.recipe(engine)
        folder = save_network(
            self.net,
            self.out_dir / "model",
            extra={"name": self.config.name, "iterations": engine.iteration, "training": recipe},
        )
        last = engine.history[-1] if engine.history else None
        write_card(folder, _card(self, recipe, last))


def _card(r: LMARRecipe, recipe: dict[str, Any], last: dict[str, Any] | None) -> str:
    cfg, d, enh, w = r.config, r.config.data, r.enhancer_info, r.weights
    task = (
        f"`{d.task['name']}` damage" + (f" (overrides {json.dumps(d.task['args'])})" if d.task["args"] else "")
        if d.task is not None
        else "no damage (clean crops)"
    )
    lines = [
        f"# {cfg.name}",
        "",
        f"LMAR resampler (`anyres.enhancement.lmar`, args {json.dumps(cfg.model['args'])}): a learned downscaler for "
        "the downsample - enhance - upsample path of large images, trained by `anyres train` for **one** "
        "frozen enhancer:",
        "",
        f"- enhancer: `{enh['folder']}` (arch `{enh['arch']}`"
        + (f", run `{enh['name']}`" if enh["name"] else "")
        + (f", {enh['iterations']} iterations" if enh["iterations"] is not None else "")
        + f"; `model.safetensors` sha256 `{enh['sha256']}`)",
        "",
        "It is model-aware: with any other enhancer (or other weights of the same one) it is not expected "
        "to help. Use: `anyres enhance photo.png --model ENHANCER --working-size N --resampler lmar "
        "--resampler-model THIS_FOLDER`.",
        "",
        "## Recipe (LMAR's GAN objective, digest Sec. 2.5; no ground truth)",
        "",
        f"- data: {', '.join(d.train) or '(images given in Python)'}"
        + (f", minus {len(d.exclude)} held-out photos ({', '.join(d.exclude)})" if d.exclude else "")
        + f"; random {d.crop} px crops{', random flips' if d.augment else ''}, each with {task} drawn per crop",
        f"- target side d uniform over multiples of {d.size_step} in [{r.sides[0]}, {r.sides[-1]}] "
        f"(scale {d.crop}/d in ({d.scale_min:g}, {d.scale_max:g}]), one d per batch",
        f"- generator loss {w.adversarial:g} L_adv + {w.consistency:g} L_rc + {w.attention:g} L_fa + "
        f"{w.edge:g} L_edge on the enhancer's encoder features (`anyres.train.lmar_losses.encoder_features`)"
        + (f" + {w.colour:g} L_colour (each crop's mean colour against the HR crop's)" if w.colour else "")
        + "; PatchGAN discriminator "
        f"({cfg.discriminator_channels} channels), one step per iteration, plain resize as real",
        f"- {recipe['iterations']} of {cfg.iterations} iterations, batch {cfg.batch_size}; Adam (both) lr "
        f"{cfg.optim.lr:g}, betas {tuple(cfg.optim.betas)}, x{cfg.optim.gamma:g} every {cfg.optim.step_every} "
        f"iterations; seed {cfg.seed}",
        f"- wall time {recipe['wall_time_hours']} h"
        + (
            f"; last logged losses: generator {last['total']:.4f}"
            + (f", discriminator {last['disc']:.4f}" if "disc" in last else "")
            if last
            else ""
        ),
        "",
        "## Metrics",
        "",
        "Not measured by the trainer. Measure PSNR of the enhanced full-resolution output against the bicubic "
        f"path with `python benchmarks/lmar_quality.py --enhancer {enh['folder']} --lmar THIS_FOLDER` (same "
        "frozen enhancer, held-out photos) and record the command beside the numbers.",
        "",
    ]
    return "\n".join(lines)


register_task(TASK_KEY, LMARTrainConfig, LMARRecipe)
