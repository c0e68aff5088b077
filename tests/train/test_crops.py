"""Random crops and flips (anyres.train.crops): flips are their own inverse, crops replay from the generator."""

import pytest
import torch

from anyres.errors import ConfigError
from anyres.ops.augment import flip
from anyres.train.crops import random_crops


def test_flip_and_transpose_move_pixels_where_they_should():
    x = torch.arange(6).reshape(1, 2, 3)
    assert flip(x, True, False)[0, 0].tolist() == [2, 1, 0]
    assert flip(x, False, True)[0, :, 0].tolist() == [3, 0]
    assert flip(x, False, False, transpose=True).shape == (1, 3, 2)
    assert torch.equal(flip(flip(x, True, True), True, True), x)


def test_random_crops_replay_and_skip_small_images():
    images = [torch.randint(0, 256, (3, 20, 24), dtype=torch.uint8), torch.zeros(3, 4, 4, dtype=torch.uint8)]
    a = random_crops(images, 8, 5, torch.Generator().manual_seed(3))
    assert a.shape == (5, 3, 8, 8) and a.dtype == torch.float32 and 0 <= a.min() and a.max() <= 1
    assert torch.equal(a, random_crops(images, 8, 5, torch.Generator().manual_seed(3)))
    assert a.sum() > 0  # never the 4x4 black image
    with pytest.raises(ConfigError, match="30x30"):
        random_crops(images, 30, 1, torch.Generator())
