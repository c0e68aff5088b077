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


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module of tiny-tensor tests (threads only add overhead and contend)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
