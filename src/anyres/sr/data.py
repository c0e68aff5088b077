"""Random-scale training samples for arbitrary-scale SR (the LIIF recipe, ``sr-implicit-downsampled``).

Per sample: ``s ~ U(scale_min, scale_max)``, an HR crop of side ``round(patch s)``, flips and transpose, a
``patch x patch`` LR (MATLAB bicubic rounded to 8 bits, or a degradation pipeline for blind training) and
``queries`` sampled HR pixels as coordinates, cells and colours; randomness from the given generator.
Details: docs/methods/liif.md ("Training samples").
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from anyres.errors import ConfigError
from anyres.ops.augment import flip
from anyres.ops.color import quantize
from anyres.ops.coords import make_coord
from anyres.ops.filtering import unsharp_mask
from anyres.ops.resize import imresize

__all__ = ["load_hr_folders", "RandomScaleSampler", "Batch"]


def load_hr_folders(folders: Iterable[str | Path]) -> list[torch.Tensor]:
    """All images of the folders as ``(3, H, W)`` uint8 tensors (grayscale replicated to RGB)."""
    from anyres.io import list_images, read_image

    images = []
    for folder in folders:
        for path in list_images(folder):
            img, _ = read_image(path)
            if img.shape[1] == 1:
                img = img.expand(-1, 3, -1, -1)
            images.append(torch.round(img[0] * 255).to(torch.uint8))
    if not images:
        raise ConfigError(f"no training images found in {list(map(str, folders))}")
    return images


@dataclass
class Batch:
    lr: torch.Tensor  # (B, 3, p, p) in [0, 1]
    coord: torch.Tensor  # (B, Q, 2) in [-1, 1]
    cell: torch.Tensor  # (B, Q, 2)
    gt: torch.Tensor  # (B, Q, 3) in [0, 1]
    scale: torch.Tensor  # (B,)
    hr: list[torch.Tensor] | None = None  # the augmented HR crops (3, side, side), with return_hr=True
    gt_plain: torch.Tensor | None = None  # with sharpen_gt: gt before sharpening (B, Q, 3)


class RandomScaleSampler:
    def __init__(
        self,
        images: Sequence[torch.Tensor],
        patch: int = 48,
        scale_min: float = 1.0,
        scale_max: float = 4.0,
        queries: int | None = None,
        augment: bool = True,
        degradation: Any = None,
        return_hr: bool = False,
        query_layout: str = "random",
        sharpen_gt: bool = False,
    ):
        if not 1.0 <= scale_min <= scale_max:
            raise ConfigError(f"need 1 <= scale_min <= scale_max, got {scale_min}, {scale_max}")
        self.images = list(images)
        self.patch = patch
        self.scale_min, self.scale_max = scale_min, scale_max
        self.queries = queries if queries is not None else patch * patch
        if self.queries > patch * patch:
            raise ConfigError(f"queries ({self.queries}) cannot exceed patch^2 ({patch * patch})")
        self.augment = augment
        self.return_hr = return_hr
        # Real-ESRGAN's targets: each HR crop is unsharp-masked (anyres.ops.filtering.unsharp_mask) and both the
        # LR and gt are made from the sharpened crop; gt_plain keeps the unsharpened pixels (a GAN's real images).
        self.sharpen_gt = sharpen_gt
        if query_layout not in ("random", "patch"):
            raise ConfigError(f"query_layout must be 'random' or 'patch', got {query_layout!r}")
        self.query_layout = query_layout
        if query_layout == "patch":
            side = math.isqrt(self.queries)
            if side * side != self.queries:
                raise ConfigError(f"query_layout 'patch' needs a square number of queries, got {self.queries}")
            self.query_side = side
        self.degradation = None
        if degradation is not None:
            from anyres.degrade import get_pipeline

            if isinstance(degradation, str):
                degradation = {"name": degradation}
            if (
                not isinstance(degradation, dict)
                or "name" not in degradation
                or set(degradation) - {"name", "args", "prob"}
            ):
                raise ConfigError(f"degradation must be a pipeline name or {{name, args, prob}}, got {degradation!r}")
            self.degradation = get_pipeline(degradation["name"], degradation.get("args") or None)
            self.degradation_prob = float(degradation.get("prob", 1.0))
            if not 0.0 <= self.degradation_prob <= 1.0:
                raise ConfigError(f"degradation prob must be in [0, 1], got {degradation['prob']!r}")
        self.min_side = torch.tensor([min(img.shape[-2:]) for img in self.images])
        if int(self.min_side.max()) < patch:
            raise ConfigError(f"all training images are smaller than the {patch}px patch")

    def sample(self, batch_size: int, generator: torch.Generator) -> Batch:
        lrs, coords, cells, gts, scales, hrs, plains = [], [], [], [], [], [], []
        degrade_gen = None
        if self.degradation is not None:
            # A stream of its own (from the batch generator's seed), so a blind run sees the same crops and
            # queries as the clean run of its seed, and only the LR differs.
            from anyres.degrade import derive_seed

            degrade_gen = torch.Generator().manual_seed(derive_seed(generator.initial_seed(), "degradation"))
        for _ in range(batch_size):
            lr, coord, cell, gt, s, hr, plain = self._one(generator, degrade_gen)
            lrs.append(lr), coords.append(coord), cells.append(cell), gts.append(gt), scales.append(s), hrs.append(hr)
            plains.append(plain)
        return Batch(
            torch.stack(lrs),
            torch.stack(coords),
            torch.stack(cells),
            torch.stack(gts),
            torch.tensor(scales),
            hrs if self.return_hr else None,
            torch.stack(plains) if self.sharpen_gt else None,
        )

    def _one(self, g: torch.Generator, degrade_gen: torch.Generator | None = None):
        u = float(torch.rand((), generator=g))
        s = self.scale_min + (self.scale_max - self.scale_min) * u
        side = round(self.patch * s)
        eligible = torch.nonzero(self.min_side >= side).flatten()
        if len(eligible) == 0:  # no image holds the crop: use the largest scale that fits
            side = int(self.min_side.max())
            eligible = torch.nonzero(self.min_side >= side).flatten()
        img = self.images[int(eligible[torch.randint(len(eligible), (), generator=g)])]
        y0 = int(torch.randint(img.shape[-2] - side + 1, (), generator=g))
        x0 = int(torch.randint(img.shape[-1] - side + 1, (), generator=g))
        hr = img[:, y0 : y0 + side, x0 : x0 + side].float() / 255.0
        if self.augment:
            flips = torch.rand(3, generator=g) < 0.5
            hr = flip(hr, bool(flips[0]), bool(flips[1]), bool(flips[2]))
        n = side * side
        if self.query_layout == "patch":
            # A contiguous query_side^2 window of the HR crop, row-major, so gt reshapes to an image
            # (for a discriminator or a perceptual loss); side >= patch >= query_side always holds.
            qs = self.query_side
            qy = int(torch.randint(side - qs + 1, (), generator=g))
            qx = int(torch.randint(side - qs + 1, (), generator=g))
            rows = torch.arange(qy, qy + qs)[:, None] * side
            pick = (rows + torch.arange(qx, qx + qs)[None, :]).reshape(-1)
        else:
            pick = torch.randperm(n, generator=g)[: self.queries]
        coord = make_coord(side, side)[pick]
        plain = None
        if self.sharpen_gt:
            plain = hr.reshape(3, n)[:, pick].t().contiguous()
            hr = unsharp_mask(hr.unsqueeze(0))[0]
        gt = hr.reshape(3, n)[:, pick].t()
        # Flips and transposes commute with the symmetric MATLAB resize, so augmenting HR first is exact.
        # With prob < 1 a coin (from the degradation stream) keeps some samples clean (bicubic LR), so one
        # model serves both; with prob = 1 no coin is drawn and the stream is that of earlier runs.
        clean = self.degradation is None or (
            self.degradation_prob < 1.0 and float(torch.rand((), generator=degrade_gen)) >= self.degradation_prob
        )
        if clean:
            lr = quantize(imresize(hr, size=(self.patch, self.patch)))
        else:
            records = self.degradation.sample(1, degrade_gen, scale=side / self.patch, hr_size=[side, side])
            lr = self.degradation.apply(hr.unsqueeze(0).contiguous(), records)[0]
        cell = torch.tensor([2.0 / side, 2.0 / side]).expand(self.queries, 2)
        return lr.contiguous(), coord, cell, gt.contiguous(), side / self.patch, hr.contiguous(), plain
