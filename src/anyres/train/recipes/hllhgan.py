"""HLLHGAN recipe (Bulat et al. 2018; networks and losses in :mod:`anyres.degrade.learned.hllhgan`).

Driven by ``anyres hllhgan`` flags (:class:`HLLHGANConfig`), not YAML. Iteration ``i`` draws ``batch`` HR
crops ``(B, 3, s, s)`` and real LR crops ``(B, 3, s/4, s/4)`` in [-1, 1] plus the generator noise from a
generator seeded by ``(seed, i)``, then updates in order ``D_low`` (hinge, real LR vs ``G_h2l(hr)``),
``G_h2l`` (``alpha MSE(G_h2l(hr), avgpool4(hr)) + beta hinge``) and, with ``l2h=True``, ``D_high`` and
``G_l2h`` on the detached ``G_h2l`` output. Writes ``out_dir/h2l`` (and ``out_dir/l2h``) weights folders.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from anyres.degrade.base import derive_seed
from anyres.degrade.learned.hllhgan import (
    SCALE,
    H2LGenerator,
    L2HGenerator,
    ResDiscriminator,
    h2l_pixel_target,
    hinge_d_loss,
    hinge_g_loss,
)
from anyres.errors import ConfigError
from anyres.hub import save_network
from anyres.train.crops import random_crops
from anyres.train.engine import BatchStream, Engine, Recipe, stderr_log, train_device, update

__all__ = ["HLLHGANConfig", "HLLHGANRecipe", "random_crops", "train_hllhgan"]


@dataclass(frozen=True)
class HLLHGANConfig:
    """Training options; the defaults are the paper's where it gives them (docs/methods/hllhgan.md)."""

    h2l_channels: tuple = (16, 32, 64, 128)
    noise: str = "map"
    skip: bool = True
    d_channels: tuple = (32, 32, 64, 64, 128, 128)
    l2h: bool = False  # also train the Low-to-High GAN (slow on a CPU: ~3.6 GMAC per 16x16)
    l2h_width: int = 256
    l2h_width2: int = 128
    hr_size: int = 64
    batch: int = 32
    lr: float = 1e-4
    betas: tuple = (0.0, 0.9)
    pixel_weight: float = 1.0  # alpha
    gan_weight: float = 0.05  # beta
    iterations: int = 2000
    seed: int = 0
    checkpoint_minutes: float = 5.0
    threads: int | None = None
    device: str = "auto"  # auto, cpu, cuda or cuda:N (anyres.train.engine.train_device)
    workers: int = 0  # DataLoader processes making the next batches

    def __post_init__(self) -> None:
        if self.hr_size % 16 or self.hr_size < 16:
            raise ConfigError(f"hr_size must be a multiple of 16, got {self.hr_size}")
        for name in ("batch", "iterations"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if int(self.workers) < 0:
            raise ConfigError(f"workers must be >= 0, got {self.workers}")
        if self.lr <= 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")


def _hllhgan_batch(
    hr_images: Sequence[torch.Tensor],
    lr_images: Sequence[torch.Tensor],
    hr_size: int,
    batch: int,
    noise_shape: tuple[int, ...],
    seed: int,
    iteration: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(hr, real_lr, noise)`` of an iteration: HR and real LR crops in [-1, 1] and the generator's noise."""
    g = torch.Generator().manual_seed(derive_seed(seed, f"hllhgan-step-{iteration}"))
    hr = random_crops(hr_images, hr_size, batch, g) * 2 - 1
    real_lr = random_crops(lr_images, hr_size // SCALE, batch, g) * 2 - 1
    return hr, real_lr, torch.randn((batch, *noise_shape), generator=g)


class HLLHGANRecipe(Recipe):
    """The two (or four) networks of one HLLHGAN run and their Adams; constant learning rate."""

    progress_bar = "HLLHGAN"
    log_every = 50

    def __init__(
        self,
        config: HLLHGANConfig,
        hr_images: Sequence[torch.Tensor],
        lr_images: Sequence[torch.Tensor],
        out_dir: str | Path,
    ):
        torch.manual_seed(config.seed)
        self.config, self.hr_images, self.lr_images, self._out_dir = config, hr_images, lr_images, Path(out_dir)
        self.g_h2l = H2LGenerator(config.h2l_channels, config.noise, skip=config.skip, fc_size=config.hr_size)
        self.d_low = ResDiscriminator(config.hr_size // SCALE, config.d_channels)
        self.modules = {"g_h2l": self.g_h2l, "d_low": self.d_low}
        if config.l2h:
            self.g_l2h = L2HGenerator(config.l2h_width, config.l2h_width2)
            self.d_high = ResDiscriminator(config.hr_size, config.d_channels)
            self.modules.update(g_l2h=self.g_l2h, d_high=self.d_high)
        self.device = train_device(config.device)
        for module in self.modules.values():
            module.to(self.device)
        self.optimizers = {
            f"optim_{k}": (torch.optim.Adam(n.parameters(), lr=config.lr, betas=tuple(config.betas)), n)
            for k, n in self.modules.items()
        }
        noise_shape = self.g_h2l.noise_shape(config.hr_size, config.hr_size)
        make = functools.partial(
            _hllhgan_batch, hr_images, lr_images, config.hr_size, config.batch, noise_shape, config.seed
        )
        self.batches = BatchStream(make, config.workers, self.device, stop=config.iterations)

    name = "hllhgan"

    @property
    def out_dir(self) -> Path:
        return self._out_dir

    def config_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self.config)

    def lr_at(self, iteration: int) -> float:
        return self.config.lr

    def _update(self, key: str, loss: torch.Tensor) -> None:
        update(self.optimizers[f"optim_{key}"][0], self.modules[key], loss)

    def step(self, iteration: int) -> dict[str, float]:
        cfg = self.config
        hr, real_lr, noise = self.batches.get(iteration)
        fake_lr = self.g_h2l(hr, noise)
        d_loss = hinge_d_loss(self.d_low(real_lr), self.d_low(fake_lr.detach()))
        self._update("d_low", d_loss)
        pix = F.mse_loss(fake_lr, h2l_pixel_target(hr))
        adv = hinge_g_loss(self.d_low(fake_lr))
        self._update("g_h2l", cfg.pixel_weight * pix + cfg.gan_weight * adv)
        out = {"d_low": d_loss.item(), "h2l_pixel": pix.item(), "h2l_gan": adv.item()}
        if cfg.l2h:
            sr = self.g_l2h(fake_lr.detach())
            dh_loss = hinge_d_loss(self.d_high(hr), self.d_high(sr.detach()))
            self._update("d_high", dh_loss)
            pix2 = F.mse_loss(sr, hr)
            adv2 = hinge_g_loss(self.d_high(sr))
            self._update("g_l2h", cfg.pixel_weight * pix2 + cfg.gan_weight * adv2)
            out.update(d_high=dh_loss.item(), l2h_pixel=pix2.item(), l2h_gan=adv2.item())
        return out

    def history_entry(
        self, iteration: int, window: list[dict[str, float]], mean: dict[str, float]
    ) -> dict[str, Any] | None:
        if iteration % self.log_every:  # not at the end of a run: entries stay 50 iterations apart
            return None
        return {"iteration": iteration, **{k: round(v, 5) for k, v in window[-1].items()}}

    def postfix(self, losses: dict[str, float]) -> dict[str, str]:
        return {k: f"{v:.3f}" for k, v in losses.items() if k in ("d_low", "h2l_pixel")}

    def check_resume(self, meta: dict[str, Any], path: Path) -> None:
        saved = meta["config"]
        mine = json.loads(json.dumps(dataclasses.asdict(self.config)))
        differ = sorted(
            k
            for k in mine
            if k not in ("iterations", "checkpoint_minutes", "threads", "device", "workers") and saved.get(k) != mine[k]
        )
        if differ:
            raise ConfigError(
                f"{path} was trained with other settings ({', '.join(differ)}); use another --out or --restart"
            )

    def save_outputs(self, engine: Engine) -> None:
        save_network(self.g_h2l, self.out_dir / "h2l", extra={"iterations": engine.iteration})
        if self.config.l2h:
            save_network(self.g_l2h, self.out_dir / "l2h", extra={"iterations": engine.iteration})


def train_hllhgan(
    hr_images: Sequence[torch.Tensor],
    lr_images: Sequence[torch.Tensor],
    out_dir: str | Path,
    config: HLLHGANConfig | None = None,
    *,
    resume: bool = True,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    stop_after: int | None = None,
) -> dict[str, Any]:
    """Train HLLHGAN from unpaired HR and real LR images (``(3, H, W)`` uint8 tensors).

    Checkpoints to ``out_dir/checkpoint.safetensors`` every ``checkpoint_minutes``, on SIGINT/SIGTERM and at
    the end, writes the ``h2l`` (and ``l2h``) weights folders beside it and resumes from a checkpoint made with
    the same settings, exactly. Returns a summary (iterations, seconds, the last losses, the h2l folder).
    """
    cfg = config or HLLHGANConfig()
    previous = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        engine = Engine(HLLHGANRecipe(cfg, hr_images, lr_images, out_dir), log=log or stderr_log, progress=progress)
        if resume:
            engine.resume()
        engine.run_until_stopped(stop_after)
        return {
            "iterations": engine.iteration,
            "seconds": round(engine.elapsed, 1),
            "losses": engine.last_losses,
            "h2l": str(Path(out_dir) / "h2l"),
        }
    finally:
        torch.set_num_threads(previous)
