"""Training an LMAR resampler (:mod:`anyres.enhancement.lmar`) for one frozen enhancement network (digest Sec. 2.5).

A config with ``task: lmar`` at its top level (``anyres train CONFIG`` dispatches on that key) names the
weights folder of a trained enhancer (``enhancer``), the LMAR network ``{name: lmar, args}`` and folders of
photos. No ground truth is involved: the enhancer is loaded, frozen (eval mode, no parameter takes a
gradient) and its encoder features on the full-size crop supervise the LMAR output (the losses of
:mod:`anyres.train.lmar_losses`). Each iteration:

1. one target side ``d`` for the batch, uniform over the multiples of ``data.size_step`` in
   ``[crop / scale_max, crop / scale_min)`` (the reference's ``randrange(256, 1024, 8)`` for 1024 crops, so
   the scale ``crop / d`` lies in ``(scale_min, scale_max]``; :func:`target_sides`);
2. ``batch_size`` random ``crop x crop`` crops (optional flips), each damaged by the enhancement task
   ``data.task`` (:mod:`anyres.enhancement.tasks`, one record per crop) when one is set: LMAR's input in use is
   the damaged photo the enhancer is about to restore, so it is trained on that, not on clean photos;
3. generator step: ``x_c = LMAR(x, (d, d))``, loss ``1 L_adv + 1 L_rc + 5000 L_fa + 1 L_edge`` (weights
   configurable), Adam;
4. one discriminator step (the digest's 1,040-parameter PatchGAN): the plain resize ``D(x)`` (LMAR's own
   kernel, no antialiasing) is "real", the detached ``x_c`` "fake", LSGAN, its own Adam.

Both Adams share the reference's schedule: lr ``4e-4``, betas ``(0.9, 0.999)``, multiplied by ``gamma``
(0.75) every ``step_every`` iterations (the reference steps every 4 epochs of batch-1 iterations).

Exact resume
    Everything random in iteration ``i`` comes from generators seeded by ``derive_seed(seed, ...i)``: the
    target side, crops, flips and damage records, and the global RNG (re-seeded inside a forked RNG state
    around the step; nothing in LMAR, the discriminator or an eval-mode enhancer reads it today). The
    learning rate is a pure function of ``i``. A checkpoint holds the LMAR and discriminator weights and both
    Adams' moments as flat tensors in one safetensors file (counters, config and the enhancer's fingerprint
    as JSON metadata), so a run stopped and resumed at any iteration ends bit-identical to an uninterrupted
    one. Resuming against an enhancer whose weights file changed is refused.

Outputs in ``out_dir``: ``config.yaml`` (the resolved config), ``checkpoint.safetensors`` (every
``checkpoint_minutes``, at a stop request and at the end) and ``model/``, the LMAR weights folder
(``model.safetensors``, ``config.json`` with the recipe and the enhancer it was trained for, ``README.md``
card). ``anyres.enhancement.api.load_resampler("lmar", out_dir / "model")`` loads it; metrics are measured separately
(``benchmarks/lmar_quality.py``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from anyres.enhancement.tasks import get_task
from anyres.degrade.base import Draw, derive_seed
from anyres.errors import AnyresError, ConfigError
from anyres.hub import CARD, CONFIG, WEIGHTS, save_network
from anyres.io import list_images, read_image, write_bytes_atomic
from anyres.enhancement.lmar import LMARConfig
from anyres.ops.resize import imresize
from anyres.registry import NETWORKS
from anyres.train.config import _apply_overrides, _build, _read_yaml
from anyres.train.enhance import _check_int, _resume_and_run
from anyres.train.lmar_losses import (
    LMARLossWeights,
    PatchDiscriminator,
    encoder_features,
    freeze,
    lmar_discriminator_loss,
    lmar_generator_loss,
)
from anyres.train.state import adam_state_tensors, load_adam_state, make_grads_contiguous, step_loop

__all__ = ["LMARTrainConfig", "LMARDataConfig", "LMAROptimConfig", "LMARTrainer", "TASK_KEY", "CHECKPOINT",
           "load_lmar_config", "check_config", "target_sides", "enhancer_fingerprint", "train"]

CHECKPOINT = "checkpoint.safetensors"
TASK_KEY = "lmar"             # the top-level ``task:`` value of an LMAR config
_MIN_SIDE = 16                # the PatchGAN needs sides >= 16 (four stride-2 convolutions)


@dataclass
class LMARDataConfig:
    train: list[str] = field(default_factory=list)   # folders of photos (no targets needed)
    # File names (e.g. im_036.png) in those folders left out of training: the held-out benchmark photos.
    exclude: list[str] = field(default_factory=list)
    # Damage applied to every crop before LMAR sees it: a task of anyres.enhancement.tasks as a name or
    # {name, args}, stored in the latter form; null trains on the clean crops.
    task: Any = field(default_factory=lambda: {"name": "lowlight", "args": {}})
    crop: int = 256              # HR crop side (the reference: 1024 from 3840x2160 frames)
    scale_min: float = 1.0       # target sides d satisfy crop / scale_max <= d < crop / scale_min
    scale_max: float = 4.0
    size_step: int = 8           # d is a multiple of this (the reference: 8)
    augment: bool = False        # independent 50 % horizontal and vertical flips (the reference: none)


@dataclass
class LMAROptimConfig:
    lr: float = 4e-4                                            # both Adams (generator and discriminator)
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    step_every: int = 1000                                      # iterations between lr *= gamma (StepLR)
    gamma: float = 0.75


@dataclass
class LMARTrainConfig:
    task: str = TASK_KEY
    name: str = "lmar"
    enhancer: str | None = None      # weights folder of the frozen enhancer (required)
    model: dict[str, Any] = field(default_factory=lambda: {"name": "lmar", "args": {}})
    data: LMARDataConfig = field(default_factory=LMARDataConfig)
    batch_size: int = 1              # crops of one iteration share their target side d
    iterations: int = 3000
    optim: LMAROptimConfig = field(default_factory=LMAROptimConfig)
    loss: LMARLossWeights = field(default_factory=LMARLossWeights)  # 0 skips a term (0 adversarial: no D)
    discriminator_channels: int = 4  # the reference PatchGAN's width
    grad_checkpoint: bool = False    # recompute LMAR's row chunks in the backward pass (large crops)
    seed: int = 0
    threads: int | None = None
    checkpoint_minutes: float = 5.0
    log_every: int = 25
    out_dir: str = "runs/lmar"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_SUBCONFIGS = {"data": LMARDataConfig, "optim": LMAROptimConfig, "loss": LMARLossWeights}


# ---------------------------------------------------------------------------------------------------------
# Loading and validation


def target_sides(crop: int, scale_min: float, scale_max: float, step: int = 8) -> list[int]:
    """The target sides ``d`` an iteration draws from: multiples of ``step`` with
    ``crop / scale_max <= d < crop / scale_min``, so that the scale ``crop / d`` is in ``(scale_min, scale_max]``.

    ``target_sides(1024, 1, 4, 8) == list(range(256, 1024, 8))``, the reference's ``randrange(256, 1024, 8)``.
    """
    return [d for d in range(step, crop + 1, step) if d * scale_max >= crop and d * scale_min < crop]


def _validate(cfg: LMARTrainConfig, where: str) -> None:
    if cfg.task != TASK_KEY:
        raise ConfigError(f"{where}: task must be {TASK_KEY!r} for LMAR training, got {cfg.task!r}")
    if not isinstance(cfg.enhancer, str) or not cfg.enhancer:
        raise ConfigError(f"{where}.enhancer is required: the weights folder of the enhancer LMAR is trained for")
    spec = cfg.model
    if not isinstance(spec, dict) or spec.get("name") != "lmar" or set(spec) - {"name", "args"} \
            or not isinstance(spec.get("args", {}) or {}, dict):
        raise ConfigError(f"{where}.model must be {{name: lmar, args: {{...}}}}, got {spec!r}")
    cfg.model = {"name": "lmar", "args": dict(spec.get("args") or {})}
    try:
        LMARConfig.from_dict(cfg.model["args"])
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{where}.model.args: {err}") from None
    d = cfg.data
    if not isinstance(d.train, list) or not all(isinstance(p, str) for p in d.train):
        raise ConfigError(f"{where}.data.train must be a list of folders, got {d.train!r}")
    if not isinstance(d.exclude, list) or not all(isinstance(p, str) for p in d.exclude):
        raise ConfigError(f"{where}.data.exclude must be a list of file names, got {d.exclude!r}")
    task = d.task
    if task is not None:
        if isinstance(task, str):
            task = {"name": task, "args": {}}
        if not isinstance(task, dict) or not isinstance(task.get("name"), str) or set(task) - {"name", "args"} \
                or not isinstance(task.get("args", {}) or {}, dict):
            raise ConfigError(f"{where}.data.task must be null, a task name or {{name, args}}, got {task!r}")
        d.task = {"name": task["name"], "args": dict(task.get("args") or {})}
        try:
            get_task(d.task["name"], d.task["args"] or None)
        except (AnyresError, TypeError, ValueError) as err:
            raise ConfigError(f"{where}.data.task: {err}") from None
    _check_int(d.crop, _MIN_SIDE, f"{where}.data.crop")
    _check_int(d.size_step, 1, f"{where}.data.size_step")
    if not (math.isfinite(d.scale_min) and math.isfinite(d.scale_max) and 1.0 <= d.scale_min < d.scale_max):
        raise ConfigError(f"{where}.data: need 1 <= scale_min < scale_max, got {d.scale_min}, {d.scale_max}")
    sides = target_sides(d.crop, d.scale_min, d.scale_max, d.size_step)
    if not sides:
        raise ConfigError(f"{where}.data: no multiple of {d.size_step} in [crop / scale_max, crop / scale_min) = "
                          f"[{d.crop / d.scale_max:g}, {d.crop / d.scale_min:g})")
    if sides[0] < _MIN_SIDE:
        raise ConfigError(f"{where}.data: target sides go down to {sides[0]}, the discriminator needs >= "
                          f"{_MIN_SIDE}; raise crop or lower scale_max")
    _check_int(cfg.batch_size, 1, f"{where}.batch_size")
    _check_int(cfg.iterations, 0, f"{where}.iterations")
    _check_int(cfg.log_every, 1, f"{where}.log_every")
    _check_int(cfg.seed, 0, f"{where}.seed")
    _check_int(cfg.discriminator_channels, 1, f"{where}.discriminator_channels")
    _check_int(cfg.optim.step_every, 1, f"{where}.optim.step_every")
    if cfg.threads is not None:
        _check_int(cfg.threads, 1, f"{where}.threads")
    betas = cfg.optim.betas
    if not isinstance(betas, (list, tuple)) or len(betas) != 2 or not all(
            isinstance(b, (int, float)) and not isinstance(b, bool) and 0.0 <= b < 1.0 for b in betas):
        raise ConfigError(f"{where}.optim.betas must be two numbers in [0, 1), got {betas!r}")
    cfg.optim.betas = [float(b) for b in betas]
    if not cfg.optim.lr > 0 or not cfg.optim.gamma > 0 or not cfg.checkpoint_minutes > 0:
        raise ConfigError(f"{where}: optim.lr, optim.gamma and checkpoint_minutes must be positive")
    if not isinstance(cfg.grad_checkpoint, bool):
        raise ConfigError(f"{where}.grad_checkpoint must be true or false, got {cfg.grad_checkpoint!r}")


def load_lmar_config(path: str | Path, overrides: dict[str, Any] | None = None) -> LMARTrainConfig:
    """Read and validate a YAML LMAR config; ``overrides`` maps dotted keys (``"optim.lr"``) to values.

    Unknown keys, wrong types and invalid values are a :class:`~anyres.errors.ConfigError`. The enhancer
    folder is checked when the trainer is built.
    """
    path = Path(path)
    raw = _read_yaml(path)
    _apply_overrides(raw, overrides, str(path))
    if raw.get("task") != TASK_KEY:
        raise ConfigError(f"{path}: an LMAR config needs 'task: {TASK_KEY}' at the top level")
    cfg = _build(LMARTrainConfig, raw, str(path), _SUBCONFIGS)
    _validate(cfg, str(path))
    return cfg


def check_config(cfg: LMARTrainConfig) -> LMARTrainConfig:
    """Validate a config built in Python (the YAML loader does this itself); returns it, normalised."""
    _validate(cfg, "config")
    return cfg


# ---------------------------------------------------------------------------------------------------------
# The enhancer and the photos


def enhancer_fingerprint(folder: str | Path) -> dict[str, Any]:
    """What identifies an enhancer weights folder: its path, architecture, run name and the SHA-256 of its
    ``model.safetensors``. Missing or unreadable folders are a :class:`~anyres.errors.ConfigError`."""
    folder = Path(folder)
    if not (folder / CONFIG).is_file() or not (folder / WEIGHTS).is_file():
        raise ConfigError(f"enhancer: {folder} is not a weights folder (expected {CONFIG} and {WEIGHTS}); train "
                          f"the enhancer first and point 'enhancer' at its run's model folder")
    try:
        config = json.loads((folder / CONFIG).read_text())
        digest = hashlib.sha256((folder / WEIGHTS).read_bytes()).hexdigest()
    except (OSError, ValueError) as err:
        raise ConfigError(f"enhancer: cannot read {folder} ({err})") from None
    config = config if isinstance(config, dict) else {}
    training = config.get("training") if isinstance(config.get("training"), dict) else {}
    return {"folder": str(folder), "arch": config.get("arch"), "name": config.get("name"),
            "iterations": config.get("iterations"), "task": training.get("task"), "sha256": digest}


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


# ---------------------------------------------------------------------------------------------------------
# The trainer


class LMARTrainer:
    """Owns the frozen enhancer, the LMAR network, the discriminator and their Adams for one run;
    :meth:`run` trains to ``config.iterations``.

    ``images``: ``(3, H, W)`` uint8 photos to train on instead of ``config.data.train`` (tests; ``exclude``
    does not apply to them).
    """

    def __init__(self, config: LMARTrainConfig, images: list[torch.Tensor] | None = None,
                 log: Callable[[str], None] | None = None):
        from anyres.enhancement.api import load_enhancer

        self.config = cfg = check_config(config)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.enhancer_info = enhancer_fingerprint(cfg.enhancer)
        try:
            enhancer = load_enhancer(cfg.enhancer)
        except AnyresError as err:
            raise ConfigError(f"enhancer: {err}") from None
        self.enhancer = freeze(enhancer)
        try:
            self.encoder = encoder_features(self.enhancer)
        except TypeError as err:
            raise ConfigError(f"enhancer: {err}") from None
        recorded = self.enhancer_info["task"]
        if cfg.data.task is not None and isinstance(recorded, dict) and recorded.get("name") != cfg.data.task["name"]:
            self.log(f"[{cfg.name}] warning: the enhancer was trained on {recorded.get('name')!r} damage, this run "
                     f"damages crops with {cfg.data.task['name']!r}")
        with torch.random.fork_rng(devices=[]):  # initial weights from the seed, the caller's RNG untouched
            torch.manual_seed(cfg.seed)
            self.net = NETWORKS.build("lmar", **cfg.model["args"])
            self.disc = PatchDiscriminator(cfg.discriminator_channels)
        betas = tuple(cfg.optim.betas)
        self.optim_g = torch.optim.Adam(self.net.parameters(), lr=cfg.optim.lr, betas=betas)
        self.optim_d = torch.optim.Adam(self.disc.parameters(), lr=cfg.optim.lr, betas=betas)
        self.weights = cfg.loss
        d = cfg.data
        self.task = get_task(d.task["name"], d.task["args"] or None) if d.task is not None else None
        self.sides = target_sides(d.crop, d.scale_min, d.scale_max, d.size_step)
        if images is None:
            images, total = _load_photos(d.train, d.exclude, d.crop)
            self.log(f"[{cfg.name}] {len(images)} of {total} photos hold a {d.crop}x{d.crop} crop"
                     + (f" ({len(d.exclude)} held out)" if d.exclude else ""))
        self.images = [img for img in images if min(img.shape[-2:]) >= d.crop]
        if not self.images:
            raise ConfigError(f"no training image holds a {d.crop}x{d.crop} crop")
        self.iteration = 0
        self.elapsed = 0.0
        self.history: list[dict[str, Any]] = []
        self.out_dir = Path(cfg.out_dir)
        self.stop_requested = False  # set by SIGINT/SIGTERM: finish the step, checkpoint, return

    # -- schedule and batches ------------------------------------------------------------------------
    def lr_at(self, iteration: int) -> float:
        o = self.config.optim
        return o.lr * o.gamma ** (iteration // o.step_every)

    def draw_at(self, iteration: int) -> dict[str, Any]:
        """The random choices of an iteration as JSON: ``{"side": d, "samples": [{"image", "top", "left",
        "hflip", "vflip", "record"}, ...]}``; a pure function of ``(seed, iteration)``."""
        g = torch.Generator().manual_seed(derive_seed(self.config.seed, f"lmar/batch/{iteration}"))
        draw = Draw(g)
        crop = self.config.data.crop
        side = self.sides[draw.integer(0, len(self.sides) - 1)]
        samples = []
        for _ in range(self.config.batch_size):
            index = draw.integer(0, len(self.images) - 1)
            h, w = self.images[index].shape[-2:]
            top, left = draw.integer(0, h - crop), draw.integer(0, w - crop)
            hflip = draw.coin(0.5) if self.config.data.augment else False
            vflip = draw.coin(0.5) if self.config.data.augment else False
            record = self.task.sample(1, g)[0] if self.task is not None else None
            samples.append({"image": index, "top": top, "left": left, "hflip": hflip, "vflip": vflip,
                            "record": record})
        return {"side": side, "samples": samples}

    def batch_at(self, iteration: int) -> tuple[torch.Tensor, int]:
        """``(x, d)``: the LMAR input ``(B, 3, crop, crop)`` float32 in [0, 1] (damaged crops when a task is set)
        and the target side of the iteration."""
        drawn = self.draw_at(iteration)
        crop = self.config.data.crop
        crops = []
        for s in drawn["samples"]:
            img = self.images[s["image"]][:, s["top"]:s["top"] + crop, s["left"]:s["left"] + crop]
            x = img.to(torch.float32).div(255.0)
            if s["hflip"]:
                x = x.flip(-1)
            if s["vflip"]:
                x = x.flip(-2)
            x = x.unsqueeze(0).contiguous()
            crops.append(self.task.apply(x, [s["record"]]) if self.task is not None else x)
        return torch.cat(crops), drawn["side"]

    def plain_resize(self, hr: torch.Tensor, side: int) -> torch.Tensor:
        """``D(x)``, LMAR's own resize without the learned compensation: the discriminator's real examples."""
        c = self.net.config
        return imresize(hr, size=(side, side), kernel=c.resize_kernel, antialias=c.antialias)

    # -- one step ------------------------------------------------------------------------------------
    def step(self) -> dict[str, float]:
        """One generator and one discriminator update; returns the iteration's loss terms (unweighted, plus
        the weighted generator ``total`` and the discriminator's ``disc``)."""
        hr, side = self.batch_at(self.iteration)
        lr = self.lr_at(self.iteration)
        for optim in (self.optim_g, self.optim_d):
            for group in optim.param_groups:
                group["lr"] = lr
        adversarial = self.weights.adversarial > 0
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed(self.config.seed, f"lmar/rng/{self.iteration}"))
            x_c = self.net(hr, (side, side), checkpoint=self.config.grad_checkpoint)
            self.disc.requires_grad_(False)  # the generator's loss must not leave gradients in D
            try:
                terms = lmar_generator_loss(x_c, hr, self.encoder, self.disc if adversarial else None, self.weights)
            finally:
                self.disc.requires_grad_(True)
            self.optim_g.zero_grad(set_to_none=True)
            terms["total"].backward()
            make_grads_contiguous(self.net.parameters())
            self.optim_g.step()
            out = {k: float(v.detach()) for k, v in terms.items()}
            if adversarial:
                with torch.no_grad():
                    x_d = self.plain_resize(hr, side)
                loss_d = lmar_discriminator_loss(self.disc, x_c, x_d)
                self.optim_d.zero_grad(set_to_none=True)
                loss_d.backward()
                make_grads_contiguous(self.disc.parameters())
                self.optim_d.step()
                out["disc"] = float(loss_d.detach())
        self.iteration += 1
        return out

    # -- checkpoints ---------------------------------------------------------------------------------
    def state_tensors(self) -> dict[str, torch.Tensor]:
        tensors = {f"lmar.{k}": v.detach().contiguous() for k, v in self.net.state_dict().items()}
        tensors.update({f"disc.{k}": v.detach().contiguous() for k, v in self.disc.state_dict().items()})
        tensors.update(adam_state_tensors(self.optim_g, self.net.parameters(), prefix="optim_g"))
        tensors.update(adam_state_tensors(self.optim_d, self.disc.parameters(), prefix="optim_d"))
        return tensors

    def save_checkpoint(self, path: Path | None = None) -> Path:
        from safetensors.torch import save

        path = path or self.out_dir / CHECKPOINT
        meta = {"iteration": self.iteration, "elapsed": self.elapsed, "config": self.config.to_dict(),
                "history": self.history, "enhancer": self.enhancer_info}
        write_bytes_atomic(path, save(self.state_tensors(), metadata={"anyres": json.dumps(meta)}))
        self.save_model()
        return path

    def load_checkpoint(self, path: Path) -> None:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = json.loads(f.metadata()["anyres"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        was = (meta.get("enhancer") or {}).get("sha256")
        if was != self.enhancer_info["sha256"]:
            raise ConfigError(f"{path} was trained for another enhancer (weights sha256 {str(was)[:12]}, now "
                              f"{self.enhancer_info['sha256'][:12]} in {self.config.enhancer}); use --restart")
        self.net.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("lmar.")})
        self.disc.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("disc.")})
        load_adam_state(self.optim_g, self.net.parameters(), tensors, prefix="optim_g")
        load_adam_state(self.optim_d, self.disc.parameters(), tensors, prefix="optim_d")
        self.iteration = int(meta["iteration"])
        self.elapsed = float(meta["elapsed"])
        self.history = list(meta.get("history", []))

    def recipe(self) -> dict[str, Any]:
        cfg, d = self.config, self.config.data
        return {
            "enhancer": self.enhancer_info, "data": list(d.train), "exclude": list(d.exclude), "task": d.task,
            "crop": d.crop, "target_sides": [self.sides[0], self.sides[-1], d.size_step],
            "scale_range": [d.scale_min, d.scale_max], "augment": d.augment, "batch_size": cfg.batch_size,
            "iterations": self.iteration, "planned_iterations": cfg.iterations,
            "loss_weights": dataclasses.asdict(self.weights), "discriminator_channels": cfg.discriminator_channels,
            "optimizer": {"name": "adam", "lr": cfg.optim.lr, "betas": list(cfg.optim.betas),
                          "step_every": cfg.optim.step_every, "gamma": cfg.optim.gamma},
            "seed": cfg.seed, "wall_time_hours": round(self.elapsed / 3600, 3),
        }

    def save_model(self) -> Path:
        """Write the LMAR weights folder ``out_dir/model`` (weights, config.json with the recipe, README.md)."""
        recipe = self.recipe()
        folder = save_network(self.net, self.out_dir / "model",
                              extra={"name": self.config.name, "iterations": self.iteration, "training": recipe})
        write_bytes_atomic(folder / CARD, self._card(recipe).encode())
        return folder

    def _card(self, recipe: dict[str, Any]) -> str:
        cfg, d, enh = self.config, self.config.data, self.enhancer_info
        last = self.history[-1] if self.history else None
        task = f"`{d.task['name']}` damage" + (f" (overrides {json.dumps(d.task['args'])})" if d.task["args"] else "") \
            if d.task is not None else "no damage (clean crops)"
        w = self.weights
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
            f"- target side d uniform over multiples of {d.size_step} in [{self.sides[0]}, {self.sides[-1]}] "
            f"(scale {d.crop}/d in ({d.scale_min:g}, {d.scale_max:g}]), one d per batch",
            f"- generator loss {w.adversarial:g} L_adv + {w.consistency:g} L_rc + {w.attention:g} L_fa + "
            f"{w.edge:g} L_edge on the enhancer's encoder features (`anyres.train.lmar_losses.encoder_features`); "
            f"PatchGAN discriminator "
            f"({cfg.discriminator_channels} channels), one step per iteration, plain resize as real",
            f"- {recipe['iterations']} of {cfg.iterations} iterations, batch {cfg.batch_size}; Adam (both) lr "
            f"{cfg.optim.lr:g}, betas {tuple(cfg.optim.betas)}, x{cfg.optim.gamma:g} every {cfg.optim.step_every} "
            f"iterations; seed {cfg.seed}",
            f"- wall time {recipe['wall_time_hours']} h"
            + (f"; last logged losses: generator {last['total']:.4f}"
               + (f", discriminator {last['disc']:.4f}" if "disc" in last else "") if last else ""),
            "",
            "## Metrics",
            "",
            "Not measured by the trainer. Measure PSNR of the enhanced full-resolution output against the bicubic "
            f"path with `python benchmarks/lmar_quality.py --enhancer {enh['folder']} --lmar THIS_FOLDER` (same "
            "frozen enhancer, held-out photos) and record the command beside the numbers.",
            "",
        ]
        return "\n".join(lines)

    # -- loop ----------------------------------------------------------------------------------------
    def run(self, stop_after: int | None = None) -> None:
        """Train until ``config.iterations`` (or ``stop_after`` more iterations, for tests)."""
        self.net.train()
        self.disc.train()
        self.enhancer.eval()
        step_loop(self, self.step, stop_after, _describe)


def _describe(mean: dict[str, float]) -> str:
    parts = " ".join(f"{k} {mean[k]:.4g}" for k in ("consistency", "attention", "edge", "adversarial") if k in mean)
    disc = f" D {mean['disc']:.4f}" if "disc" in mean else ""
    return f"G {mean['total']:.4f} ({parts}){disc}"


def train(config: LMARTrainConfig, resume: bool = True, log: Callable[[str], None] | None = None,
          images: list[torch.Tensor] | None = None) -> LMARTrainer:
    """Run a config to completion, resuming from ``out_dir/checkpoint.safetensors`` if it exists."""
    return _resume_and_run(LMARTrainer(config, images=images, log=log), config, resume)
