import pytest
import torch


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
    yield


def tiny_liif_config(**overrides):
    cfg = {"encoder": {"name": "edsr-baseline", "args": {"n_resblocks": 1, "n_feats": 8}}, "hidden": [16, 16]}
    cfg.update(overrides)
    return cfg
