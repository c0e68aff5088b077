"""Training HLLHGAN (the networks, losses and the degradation pipeline are in :mod:`anyres.degrade.learned.hllhgan`).

``train_hllhgan(hr_images, lr_images, out_dir, config)`` updates both GANs of one step in order
(``D_low``, ``G_h2l``, then, with ``l2h=True``, ``D_high`` and ``G_l2h`` on the detached ``G_h2l`` output),
checkpoints every few minutes, resumes, and writes ``out_dir/h2l`` (and ``out_dir/l2h``) weights folders.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F

from anyres.degrade.base import derive_seed
from anyres.degrade.learned.hllhgan import (SCALE, H2LGenerator, L2HGenerator, ResDiscriminator, h2l_pixel_target,
                                    hinge_d_loss, hinge_g_loss)
from anyres.errors import ConfigError
from anyres.hub import _write_atomic, save_network
from anyres.train.state import adam_state_tensors, load_adam_state, make_grads_contiguous

__all__ = ["HLLHGANConfig", "random_crops", "train_hllhgan", "CHECKPOINT"]

CHECKPOINT = "checkpoint.safetensors"


def random_crops(images: Sequence[torch.Tensor], size: int, count: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` random ``size x size`` crops, each from a random image large enough, with random
    horizontal/vertical flips and transposes. Images are ``(3, H, W)`` uint8; returns float in [0, 1]."""
    eligible = [i for i, img in enumerate(images) if min(img.shape[-2:]) >= size]
    if not eligible:
        raise ConfigError(f"no training image holds a {size}x{size} crop")
    out = []
    for _ in range(count):
        img = images[eligible[int(torch.randint(len(eligible), (), generator=generator))]]
        y0 = int(torch.randint(img.shape[-2] - size + 1, (), generator=generator))
        x0 = int(torch.randint(img.shape[-1] - size + 1, (), generator=generator))
        crop = img[:, y0:y0 + size, x0:x0 + size]
        flips = torch.rand(3, generator=generator) < 0.5
        if flips[0]:
            crop = crop.flip(-1)
        if flips[1]:
            crop = crop.flip(-2)
        if flips[2]:
            crop = crop.transpose(-1, -2)
        out.append(crop)
    return torch.stack(out).float() / 255.0


@dataclass(frozen=True)
class HLLHGANConfig:
    """Training options; the defaults are the paper's where it gives them (see the module docstring)."""

    h2l_channels: tuple = (16, 32, 64, 128)
    noise: str = "map"
    skip: bool = True
    d_channels: tuple = (32, 32, 64, 64, 128, 128)
    l2h: bool = False                 # also train the Low-to-High GAN (slow on a CPU: ~3.6 GMAC per 16x16)
    l2h_width: int = 256
    l2h_width2: int = 128
    hr_size: int = 64
    batch: int = 32
    lr: float = 1e-4
    betas: tuple = (0.0, 0.9)
    pixel_weight: float = 1.0         # alpha
    gan_weight: float = 0.05          # beta
    iterations: int = 2000
    seed: int = 0
    checkpoint_minutes: float = 5.0
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.hr_size % 16 or self.hr_size < 16:
            raise ConfigError(f"hr_size must be a multiple of 16, got {self.hr_size}")
        for name in ("batch", "iterations"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")


class _Run:
    """The networks and optimisers of one HLLHGAN training run."""

    def __init__(self, cfg: HLLHGANConfig):
        torch.manual_seed(cfg.seed)
        self.cfg = cfg
        self.g_h2l = H2LGenerator(cfg.h2l_channels, cfg.noise, skip=cfg.skip, fc_size=cfg.hr_size)
        self.d_low = ResDiscriminator(cfg.hr_size // SCALE, cfg.d_channels)
        self.nets = {"g_h2l": self.g_h2l, "d_low": self.d_low}
        if cfg.l2h:
            self.g_l2h = L2HGenerator(cfg.l2h_width, cfg.l2h_width2)
            self.d_high = ResDiscriminator(cfg.hr_size, cfg.d_channels)
            self.nets.update(g_l2h=self.g_l2h, d_high=self.d_high)
        self.optims = {k: torch.optim.Adam(n.parameters(), lr=cfg.lr, betas=tuple(cfg.betas))
                       for k, n in self.nets.items()}
        self.iteration = 0
        self.elapsed = 0.0
        self.history: list[dict[str, float]] = []

    def _update(self, key: str, loss: torch.Tensor) -> None:
        opt = self.optims[key]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        make_grads_contiguous(self.nets[key].parameters())
        opt.step()

    def step(self, hr_images: Sequence[torch.Tensor], lr_images: Sequence[torch.Tensor]) -> dict[str, float]:
        cfg = self.cfg
        g = torch.Generator().manual_seed(derive_seed(cfg.seed, f"hllhgan-step-{self.iteration}"))
        hr = random_crops(hr_images, cfg.hr_size, cfg.batch, g) * 2 - 1
        real_lr = random_crops(lr_images, cfg.hr_size // SCALE, cfg.batch, g) * 2 - 1
        noise = self.g_h2l.make_noise(cfg.batch, cfg.hr_size, cfg.hr_size, g)
        fake_lr = self.g_h2l(hr, noise)
        # D_low: real LR vs generated LR
        d_loss = hinge_d_loss(self.d_low(real_lr), self.d_low(fake_lr.detach()))
        self._update("d_low", d_loss)
        # G_h2l: pixel (vs 4x4 average pool of HR) + adversarial
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
        self.iteration += 1
        return out

    # -- checkpoints -----------------------------------------------------------------------------------
    def save(self, out_dir: Path) -> None:
        from safetensors.torch import save

        tensors: dict[str, torch.Tensor] = {}
        for key, net in self.nets.items():
            tensors.update({f"{key}.{k}": v.detach().contiguous() for k, v in net.state_dict().items()})
            tensors.update(adam_state_tensors(self.optims[key], net.parameters(), prefix=f"optim_{key}"))
        meta = {"iteration": self.iteration, "elapsed": self.elapsed, "config": dataclasses.asdict(self.cfg),
                "history": self.history}
        out_dir.mkdir(parents=True, exist_ok=True)
        _write_atomic(out_dir / CHECKPOINT, save(tensors, metadata={"anyres": json.dumps(meta)}))
        save_network(self.g_h2l, out_dir / "h2l", extra={"iterations": self.iteration})
        if self.cfg.l2h:
            save_network(self.g_l2h, out_dir / "l2h", extra={"iterations": self.iteration})

    def load(self, path: Path) -> None:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = json.loads(f.metadata()["anyres"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        saved = meta["config"]
        mine = json.loads(json.dumps(dataclasses.asdict(self.cfg)))
        differ = sorted(k for k in mine if k not in ("iterations", "checkpoint_minutes", "threads")
                        and saved.get(k) != mine[k])
        if differ:
            raise ConfigError(f"{path} was trained with other settings ({', '.join(differ)}); "
                              f"use another --out or --restart")
        for key, net in self.nets.items():
            net.load_state_dict({k[len(key) + 1:]: v for k, v in tensors.items() if k.startswith(key + ".")})
            load_adam_state(self.optims[key], net.parameters(), tensors, prefix=f"optim_{key}")
        self.iteration = int(meta["iteration"])
        self.elapsed = float(meta["elapsed"])
        self.history = list(meta.get("history", []))


def train_hllhgan(hr_images: Sequence[torch.Tensor], lr_images: Sequence[torch.Tensor], out_dir: str | Path,
                  config: HLLHGANConfig | None = None, *, resume: bool = True, progress: bool = True,
                  log: Callable[[str], None] | None = None, stop_after: int | None = None) -> dict[str, Any]:
    """Train HLLHGAN from unpaired HR and real LR images (``(3, H, W)`` uint8 tensors).

    Checkpoints to ``out_dir/checkpoint.safetensors`` every ``checkpoint_minutes`` and at the end, and
    writes the ``h2l`` (and ``l2h``) weights folders beside it; resumes from an existing checkpoint made
    with the same settings. Each iteration draws its crops and noise from a generator seeded by
    ``(seed, iteration)``, so a resumed run takes the same steps as an uninterrupted one. Returns a summary
    (iterations, seconds, the last losses).
    """
    from tqdm import tqdm

    cfg = config or HLLHGANConfig()
    out_dir = Path(out_dir)
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    previous = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        run = _Run(cfg)
        if resume and (out_dir / CHECKPOINT).exists():
            run.load(out_dir / CHECKPOINT)
            log(f"[hllhgan] resumed at iteration {run.iteration} from {out_dir / CHECKPOINT}")
        for net in run.nets.values():
            net.train()
        target = cfg.iterations if stop_after is None else min(cfg.iterations, run.iteration + stop_after)
        last_ckpt = time.monotonic()
        losses: dict[str, float] = {}
        bar = tqdm(total=target, initial=run.iteration, desc="HLLHGAN", unit="it", disable=not progress)
        while run.iteration < target:
            t0 = time.monotonic()
            losses = run.step(hr_images, lr_images)
            run.elapsed += time.monotonic() - t0
            bar.update(1)
            bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items() if k in ("d_low", "h2l_pixel")})
            if run.iteration % 50 == 0:
                run.history.append({"iteration": run.iteration, **{k: round(v, 5) for k, v in losses.items()}})
            if time.monotonic() - last_ckpt >= cfg.checkpoint_minutes * 60:
                run.save(out_dir)
                last_ckpt = time.monotonic()
        bar.close()
        run.save(out_dir)
        return {"iterations": run.iteration, "seconds": round(run.elapsed, 1), "losses": losses,
                "h2l": str(out_dir / "h2l")}
    finally:
        torch.set_num_threads(previous)
