"""The training loop of arbitrary-scale SR models (LIIF recipe).

* Each iteration draws its batch from a generator seeded by ``(seed, rank, iteration)``, and the learning
  rate is a pure function of the iteration, so a resumed run replays exactly what an uninterrupted run
  would have done: same batches, same Adam state, same weights.
* Checkpoints are one safetensors file (weights, Adam moments; counters and config as JSON metadata),
  written atomically every ``checkpoint_minutes`` and at the end; nothing is ever unpickled.
* Data-parallel on CPU with ``torchrun --nproc_per_node=N`` (gloo): each rank draws ``batch_size / N``
  samples; DDP averages gradients; rank 0 writes checkpoints and logs.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch
import torch.distributed as dist

from anyres.sr.data import RandomScaleSampler, load_hr_folders
from anyres.degrade.base import derive_seed
from anyres.errors import ConfigError
# Imported up front, not lazily at the first validation: a long run must not pick up half-edited code.
from anyres.evaluation import evaluate
from anyres.sr.render import LIIFUpscaler
from anyres.hub import _write_atomic, save_network
from anyres.registry import NETWORKS
from anyres.train.config import TrainConfig
from anyres.train.state import (adam_state_tensors, format_eta, load_adam_state, make_grads_contiguous,
                                run_until_stopped)

__all__ = ["Trainer", "train", "CHECKPOINT"]

CHECKPOINT = "checkpoint.safetensors"


def _batch_generator(seed: int, rank: int, iteration: int) -> torch.Generator:
    # Python's hash of a tuple of ints is deterministic across runs (no hash randomisation for ints).
    return torch.Generator().manual_seed(hash((seed, rank, iteration)) & 0x7FFF_FFFF_FFFF_FFFF)


class Trainer:
    """Owns the model, optimiser and sampler of one run; :meth:`run` trains to ``config.iterations``."""

    def __init__(self, config: TrainConfig, images: list[torch.Tensor] | None = None,
                 log: Callable[[str], None] | None = None):
        self.config = config
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group("gloo")
        if config.batch_size % self.world:
            raise ConfigError(f"batch_size {config.batch_size} is not divisible by {self.world} processes")
        if config.threads:
            torch.set_num_threads(config.threads)
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        torch.manual_seed(config.seed)  # identical initial weights on every rank
        spec = config.model
        self.net = NETWORKS.build(spec["name"], **spec.get("args", {}))
        if config.init:
            self._load_init(config.init)
        self.net = self.net.to(memory_format=torch.channels_last)
        self.model = self.net
        if self.world > 1:
            self.model = torch.nn.parallel.DistributedDataParallel(self.net)
        self.optim = torch.optim.Adam(self.net.parameters(), lr=config.optim.lr)
        self.disc, self.disc_optim, self.perceptual = None, None, None
        if (config.perceptual_weight or config.gan_weight) and config.data.query_layout != "patch":
            raise ConfigError("perceptual and GAN losses need data.query_layout: patch (image-shaped queries)")
        if config.pixel_loss not in ("l1", "mse"):
            raise ConfigError(f"pixel_loss must be 'l1' or 'mse', got {config.pixel_loss!r}")
        if config.gan_weight:
            from anyres.train.losses import UNetDiscriminator

            self.disc = UNetDiscriminator(**config.discriminator).to(memory_format=torch.channels_last)
            self.disc_optim = torch.optim.Adam(self.disc.parameters(), lr=config.optim.lr)
        if config.perceptual_weight:
            from anyres.train.losses import PerceptualLoss

            self.perceptual = PerceptualLoss()
        d = config.data
        if images is None:
            images = load_hr_folders(d.train)
        self.sampler = RandomScaleSampler(images, d.patch, d.scale_min, d.scale_max, d.queries, d.augment,
                                          degradation=d.degradation,
                                          return_hr=getattr(self.net, "uses_hr_prior", False),
                                          query_layout=d.query_layout)
        self.iteration = 0
        self.elapsed = 0.0
        self.history: list[dict[str, Any]] = []
        self.out_dir = Path(config.out_dir)
        self.stop_requested = False  # set by SIGINT/SIGTERM: finish the step, checkpoint, return

    def _load_init(self, folder: str) -> None:
        from safetensors.torch import load_file

        path = Path(folder) / "model.safetensors"
        if not path.is_file():
            raise ConfigError(f"init: {path} not found (expected a weights folder with model.safetensors)")
        # Modules a network may add on top of the one it starts from (LIIFusion stage 2 over stage 1) start
        # from their own initialisation; every other weight must be in the file.
        fresh = tuple(getattr(self.net, "init_new_modules", ()))
        try:
            missing, unexpected = self.net.load_state_dict(load_file(str(path)), strict=False)
        except RuntimeError as err:
            raise ConfigError(f"init: {path} does not match the model spec ({str(err).splitlines()[0]})") from None
        missing = [k for k in missing if not k.startswith(fresh)] if fresh else missing
        if missing or unexpected:
            raise ConfigError(f"init: {path} does not match the model spec "
                              f"(missing {missing[:3]}, unexpected {unexpected[:3]})")

    # -- schedule ------------------------------------------------------------------------------------
    def lr_at(self, iteration: int) -> float:
        o = self.config.optim
        # A fresh Adam state takes full-size steps at once; a warm-up keeps fine-tuning from wrecking the
        # initial weights in its first iterations.
        ramp = min(1.0, (iteration + 1) / o.warmup) if o.warmup > 0 else 1.0
        return o.lr * ramp * o.gamma ** sum(iteration >= m for m in o.milestones)

    # -- one step ------------------------------------------------------------------------------------
    def step(self) -> float:
        cfg = self.config
        batch = self.sampler.sample(cfg.batch_size // self.world, _batch_generator(cfg.seed, self.rank, self.iteration))
        for group in self.optim.param_groups:
            group["lr"] = self.lr_at(self.iteration)
        lr = batch.lr.contiguous(memory_format=torch.channels_last)
        bf16 = cfg.precision == "bf16"
        extra, aux = {}, None
        if batch.hr is not None:  # networks conditioned on a prior made from the HR crop (LIIFusion)
            g = torch.Generator().manual_seed(derive_seed(cfg.seed, f"prior/{self.rank}/{self.iteration}"))
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
        if self.perceptual is not None:
            loss = loss + cfg.perceptual_weight * self.perceptual(pred_img, gt_img)
        if self.disc is not None:
            from anyres.train.losses import ragan_g_loss

            self.disc.requires_grad_(False)
            with torch.autocast(lr.device.type, dtype=torch.bfloat16, enabled=bf16):
                adv = ragan_g_loss(self.disc(gt_img), self.disc(pred_img))
            loss = loss + cfg.gan_weight * adv.float()
        self.optim.zero_grad(set_to_none=True)
        loss.backward()
        make_grads_contiguous(self.net.parameters())
        self.optim.step()
        if self.disc is not None:
            self._discriminator_step(gt_img, pred_img.detach(), bf16)
        self.iteration += 1
        return float(loss.detach())

    def _discriminator_step(self, real: torch.Tensor, fake: torch.Tensor, bf16: bool) -> None:
        from anyres.train.losses import ragan_d_loss

        self.disc.requires_grad_(True)
        for group in self.disc_optim.param_groups:
            group["lr"] = self.lr_at(self.iteration)
        with torch.autocast(real.device.type, dtype=torch.bfloat16, enabled=bf16):
            d_loss = ragan_d_loss(self.disc(real), self.disc(fake))
        self.disc_optim.zero_grad(set_to_none=True)
        d_loss.float().backward()
        make_grads_contiguous(self.disc.parameters())
        self.disc_optim.step()

    # -- checkpoints ---------------------------------------------------------------------------------
    def state_tensors(self) -> dict[str, torch.Tensor]:
        tensors = {f"model.{k}": v.detach().contiguous() for k, v in self.net.state_dict().items()}
        tensors.update(adam_state_tensors(self.optim, self.net.parameters()))
        if self.disc is not None:
            tensors.update({f"disc.{k}": v.detach().contiguous() for k, v in self.disc.state_dict().items()})
            tensors.update(adam_state_tensors(self.disc_optim, self.disc.parameters(), prefix="optim_disc"))
        return tensors

    def save_checkpoint(self, path: Path | None = None) -> Path:
        from safetensors.torch import save

        path = path or self.out_dir / CHECKPOINT
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {"iteration": self.iteration, "elapsed": self.elapsed, "config": self.config.to_dict(),
                "history": self.history}
        _write_atomic(path, save(self.state_tensors(), metadata={"anyres": json.dumps(meta)}))
        save_network(self.net, self.out_dir / "model", extra={"name": self.config.name, "iterations": self.iteration})
        return path

    def load_checkpoint(self, path: Path) -> None:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = json.loads(f.metadata()["anyres"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        self.net.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        load_adam_state(self.optim, self.net.parameters(), tensors)
        if self.disc is not None:
            self.disc.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("disc.")})
            load_adam_state(self.disc_optim, self.disc.parameters(), tensors, prefix="optim_disc")
        self.iteration = int(meta["iteration"])
        self.elapsed = float(meta["elapsed"])
        self.history = list(meta.get("history", []))

    # -- validation ----------------------------------------------------------------------------------
    def validate(self) -> dict[str, Any] | None:
        v = self.config.val
        if not v.data:
            return None
        self.net.eval()
        try:
            report = evaluate(LIIFUpscaler(self.net, name=self.config.name, mode="fast"), v.data, v.scales,
                              progress=False)
        finally:
            self.net.train()
        entry = {"iteration": self.iteration, "psnr": {f"x{r['scale']:g}": round(r["psnr"], 3) for r in report["results"]}}
        self.history.append(entry)
        return entry

    # -- loop ----------------------------------------------------------------------------------------
    def run(self, stop_after: int | None = None) -> None:
        """Train until ``config.iterations`` (or ``stop_after`` more iterations, for tests)."""
        cfg = self.config
        main = self.rank == 0
        target = cfg.iterations if stop_after is None else min(cfg.iterations, self.iteration + stop_after)
        last_ckpt = time.monotonic()
        window_start, window_iters, losses = time.monotonic(), 0, []
        self.net.train()
        while self.iteration < target:
            t0 = time.monotonic()
            losses.append(self.step())
            self.elapsed += time.monotonic() - t0
            window_iters += 1
            if main and (self.iteration % cfg.log_every == 0 or self.iteration == target):
                rate = window_iters / max(time.monotonic() - window_start, 1e-9)
                eta = (cfg.iterations - self.iteration) / rate if rate > 0 else float("inf")
                self.log(f"[{cfg.name}] it {self.iteration}/{cfg.iterations} loss {sum(losses) / len(losses):.4f} "
                         f"lr {self.lr_at(self.iteration - 1):.2e} {rate:.2f} it/s ETA {format_eta(eta)}")
                window_start, window_iters, losses = time.monotonic(), 0, []
            if main and cfg.val.data and cfg.val.every and self.iteration % cfg.val.every == 0:
                entry = self.validate()
                self.log(f"[{cfg.name}] validation at it {self.iteration}: {entry['psnr']}")
            # Every rank takes part in the decisions so that DDP ranks stay in lock step.
            due = time.monotonic() - last_ckpt >= cfg.checkpoint_minutes * 60
            stop = self.stop_requested
            if self.world > 1:
                flags = torch.tensor([int(due), int(stop)])
                dist.broadcast(flags, 0)
                due, stop = bool(flags[0]), bool(flags[1])
            if stop:
                if main:
                    self.save_checkpoint()
                    self.log(f"[{cfg.name}] stopped at it {self.iteration}; checkpoint saved, run the same command to resume")
                return
            if due:
                if main:
                    self.save_checkpoint()
                    self.log(f"[{cfg.name}] checkpoint at it {self.iteration} -> {self.out_dir / CHECKPOINT}")
                last_ckpt = time.monotonic()
        if main:
            self.save_checkpoint()


def train(config: TrainConfig, resume: bool = True, log: Callable[[str], None] | None = None) -> Trainer:
    """Run a config to completion, resuming from ``out_dir/checkpoint.safetensors`` if it exists."""
    trainer = Trainer(config, log=log)
    ckpt = Path(config.out_dir) / CHECKPOINT
    if resume and ckpt.exists():
        trainer.load_checkpoint(ckpt)
        trainer.log(f"[{config.name}] resumed from {ckpt} at iteration {trainer.iteration}")
    if trainer.rank == 0:
        Path(config.out_dir).mkdir(parents=True, exist_ok=True)
        import yaml

        (Path(config.out_dir) / "config.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))

    run_until_stopped(trainer, config.name)
    return trainer
