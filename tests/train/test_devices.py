"""Where a run computes: device names (anyres.train.engine.train_device) and the batch stream's workers."""

import dataclasses
import pickle

import pytest
import torch
from click.testing import CliRunner

from anyres.cli import main
from anyres.errors import ConfigError
from anyres.train.engine import BatchStream, to_device, train_device


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_cpu_and_auto_without_a_gpu(no_cuda):
    assert train_device("cpu") == torch.device("cpu")
    assert train_device("auto") == torch.device("cpu")


@pytest.mark.parametrize("spec", ["cuda", "cuda:0"])
def test_a_missing_gpu_is_a_config_error(no_cuda, spec):
    with pytest.raises(ConfigError, match="no CUDA device"):
        train_device(spec)


def test_a_gpu_index_past_the_last_is_a_config_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert train_device("cuda") == torch.device("cuda", 0)  # a bare cuda is this rank's device
    with pytest.raises(ConfigError, match="only 1 CUDA device"):
        train_device("cuda:1")


@pytest.mark.parametrize("spec", ["gpu", "tpu:0", "", 3])
def test_unknown_devices_are_config_errors(spec):
    with pytest.raises(ConfigError, match="expected auto, cpu, cuda or cuda:N"):
        train_device(spec)


def _batch(seed, iteration):
    g = torch.Generator().manual_seed(seed * 1000 + iteration)
    return {"x": torch.rand(2, 3, generator=g), "i": iteration}


@dataclasses.dataclass
class _Pair:
    a: torch.Tensor
    b: list


def test_batch_stream_workers_give_the_inline_batches_across_a_jump():
    import functools

    make = functools.partial(_batch, 7)
    pickle.dumps(make)  # what a spawned worker receives
    inline = BatchStream(make, workers=0, stop=10)
    ahead = BatchStream(make, workers=2, stop=10)
    order = [0, 1, 2, 3, 6, 7, 8, 9, 10, 11]  # a jump (a resume) restarts the workers; past stop it is inline
    for i in order:
        a, b = inline.get(i), ahead.get(i)
        assert a["i"] == b["i"] == i and torch.equal(a["x"], b["x"])
    ahead.close()


def test_to_device_moves_tensors_inside_containers_and_dataclasses():
    pair = _Pair(torch.ones(2), [torch.zeros(1), "keep"])
    moved = to_device((pair, {"k": torch.ones(1)}), torch.device("cpu"))
    assert isinstance(moved, tuple) and isinstance(moved[0], _Pair)
    assert torch.equal(moved[0].a, pair.a) and moved[0].b[1] == "keep" and torch.equal(moved[1]["k"], torch.ones(1))


def test_cli_refuses_a_missing_gpu_in_one_line_before_writing_anything(tmp_path, no_cuda):
    config = tmp_path / "run.yaml"
    out = tmp_path / "out"
    config.write_text(f"name: tiny\nmodel: {{name: liif, args: {{}}}}\ndata: {{train: [{tmp_path}]}}\nout_dir: {out}\n")
    res = CliRunner().invoke(main, ["train", str(config), "--device", "cuda"])
    assert res.exit_code != 0
    assert "no CUDA device" in res.output and "Traceback" not in res.output
    assert len([ln for ln in res.output.strip().splitlines() if ln]) == 1
    assert not out.exists()
