"""The training engine (anyres.train.engine) over every recipe: a run stopped and resumed ends bit-identical to
an uninterrupted one, SIGINT checkpoints and returns, old run folders resume, the log line keeps its form."""

import os
import shutil
import signal
from pathlib import Path

import pytest
import torch

from anyres.enhancement.unet import UNetEnhancer
from anyres.hub import save_network
from anyres.train.engine import CHECKPOINT, Engine, build, milestone_lr, train
from anyres.train.recipes.enhance import EnhanceDataConfig, EnhanceOptimConfig, EnhanceTrainConfig
from anyres.train.recipes.hllhgan import HLLHGANConfig, HLLHGANRecipe
from anyres.train.recipes.lmar import LMARDataConfig, LMAROptimConfig, LMARTrainConfig
from anyres.train.recipes.sr import DataConfig, OptimConfig, TrainConfig
from conftest import tiny_liif_config

pytestmark = pytest.mark.usefixtures("one_thread")
ROOT = Path(__file__).resolve().parents[2]


def _images(n=3, size=40):
    g = torch.Generator().manual_seed(1)
    base = torch.rand(n, 3, size // 8, size // 8, generator=g)
    imgs = torch.nn.functional.interpolate(base, size=(size, size), mode="bilinear", align_corners=False)
    return [torch.round(x * 255).to(torch.uint8) for x in imgs]


def _quiet(msg):
    pass


@pytest.fixture(scope="module")
def enhancer(tmp_path_factory):
    torch.manual_seed(0)
    net = UNetEnhancer(width=2, levels=2)
    with torch.no_grad():
        net.to_residual.weight.normal_(0, 0.1)
    return save_network(net, tmp_path_factory.mktemp("enhancer") / "model")


def _sr(out, enhancer):
    return TrainConfig(
        model={"name": "liif", "args": tiny_liif_config()},
        precision="fp32",
        data=DataConfig(patch=8, scale_min=1.0, scale_max=3.0, queries=32),
        batch_size=2,
        iterations=4,
        optim=OptimConfig(lr=1e-3, milestones=[2]),
        checkpoint_minutes=1e9,
        log_every=1000,
        out_dir=str(out),
    )


def _enhance(out, enhancer):
    return EnhanceTrainConfig(
        name="tiny",
        model={"name": "deeplpf", "args": {"width": 2, "features": 4, "head_size": 8, "head_dropout": 0.5}},
        data=EnhanceDataConfig(task="retouch", patch=16),
        batch_size=2,
        iterations=4,
        optim=EnhanceOptimConfig(lr=1e-3, milestones=[2]),
        checkpoint_minutes=1e9,
        log_every=1000,
        out_dir=str(out),
    )


def _lmar(out, enhancer):
    return LMARTrainConfig(
        name="tiny",
        enhancer=str(enhancer),
        model={"name": "lmar", "args": {"hidden": [8]}},
        data=LMARDataConfig(crop=32, scale_max=2.0, augment=True),
        iterations=4,
        optim=LMAROptimConfig(step_every=2),
        checkpoint_minutes=1e9,
        log_every=1000,
        out_dir=str(out),
    )


class _HLLHGAN:
    """Builds HLLHGAN engines the way train_hllhgan does (the recipe takes two image sets, not a YAML config)."""

    def __init__(self, out, **overrides):
        self.out, self.overrides = out, overrides

    def engine(self):
        cfg = HLLHGANConfig(
            h2l_channels=(4, 4, 4, 4),
            d_channels=(4, 4, 4, 4, 4, 4),
            hr_size=16,
            batch=2,
            iterations=4,
            **self.overrides,
        )
        return Engine(HLLHGANRecipe(cfg, _images(2, 24), _images(2, 8), self.out), log=_quiet, progress=False)


def _engine(kind, out, enhancer, **overrides):
    if kind == "hllhgan":
        return _HLLHGAN(out, **overrides).engine()
    cfg = {"sr": _sr, "enhance": _enhance, "lmar": _lmar}[kind](out, enhancer)
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return build(cfg, images=_images(), log=_quiet)


def _state(engine):
    return {k: v.clone() for k, v in engine.state_tensors().items()}


@pytest.mark.parametrize("kind", ["sr", "enhance", "lmar", "hllhgan"])
def test_resume_is_bit_identical_for_every_recipe(tmp_path, kind, enhancer):
    full = _engine(kind, tmp_path / "a", enhancer)
    initial = _state(full)
    full.run()
    first = _engine(kind, tmp_path / "b", enhancer)
    first.run(stop_after=3)  # past the learning-rate step at 2
    resumed = _engine(kind, tmp_path / "b", enhancer)
    assert resumed.resume() and resumed.iteration == 3
    resumed.run()
    a, b = _state(full), _state(resumed)
    assert a.keys() == b.keys() and any(".exp_avg" in k for k in a)
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])][:3]
    assert any(not torch.equal(initial[k], a[k]) for k in initial)  # it did train


@pytest.mark.parametrize("kind", ["sr", "enhance", "lmar", "hllhgan"])
def test_data_workers_give_the_same_run_for_every_recipe(tmp_path, kind, enhancer):
    inline = _engine(kind, tmp_path / "a", enhancer, workers=0)
    inline.run()
    first = _engine(kind, tmp_path / "b", enhancer, workers=2, device="cpu")
    assert first.recipe.device == torch.device("cpu")
    first.run(stop_after=1)
    resumed = _engine(kind, tmp_path / "b", enhancer, workers=2, device="cpu")
    assert resumed.resume()
    resumed.run()  # its workers start again at iteration 1
    a, b = _state(inline), _state(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])][:3]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_run_moves_between_cuda_and_the_cpu(tmp_path, enhancer):
    gpu = _engine("sr", tmp_path, enhancer, device="cuda", precision="bf16", workers=1)
    assert gpu.recipe.device.type == "cuda"
    gpu.run(stop_after=2)
    assert all(v.device.type == "cpu" for v in gpu.state_tensors().values())  # a resume state any machine reads
    cpu = _engine("sr", tmp_path, enhancer, device="cpu")
    assert cpu.resume() and cpu.iteration == 2
    cpu.run()
    assert cpu.iteration == 4 and all(torch.isfinite(v).all() for v in _state(cpu).values())


def test_sigint_checkpoints_after_the_step_and_the_run_resumes_exactly(tmp_path, enhancer):
    engine = _engine("enhance", tmp_path, enhancer)
    step = engine.step

    def step_then_signal():
        losses = step()
        if engine.iteration == 2:
            os.kill(os.getpid(), signal.SIGINT)  # as Ctrl-C (SIGTERM takes the same path)
        return losses

    engine.step = step_then_signal
    before = signal.getsignal(signal.SIGINT)
    engine.run_until_stopped()
    assert engine.stop_requested and engine.iteration == 2 and signal.getsignal(signal.SIGINT) is before
    resumed = _engine("enhance", tmp_path, enhancer)
    assert resumed.resume() and resumed.iteration == 2
    resumed.run()
    full = _engine("enhance", tmp_path / "full", enhancer)
    full.run()
    a, b = _state(full), _state(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_log_lines_and_history(tmp_path, enhancer):
    lines = []
    cfg = _enhance(tmp_path, enhancer)
    cfg.log_every = 2
    engine = build(cfg, images=_images(), log=lines.append)
    assert lines == ["[tiny] training on cpu"]  # where it computes, first
    lines.clear()
    engine.run()
    assert [ln.split(" lr ")[0].rsplit(" loss ", 1)[0] for ln in lines] == ["[tiny] it 2/4", "[tiny] it 4/4"]
    assert all(" it/s ETA " in ln for ln in lines)
    assert [h["iteration"] for h in engine.history] == [2, 4] and set(engine.history[0]) == {"iteration", "loss"}


def test_milestone_schedule_with_warmup():
    assert [milestone_lr(1.0, i, [3], 0.5, warmup=2) for i in (0, 1, 2, 3)] == [0.5, 1.0, 1.0, 0.5]


def test_the_shipped_sr_checkpoint_resumes_in_a_run_folder(tmp_path):
    from safetensors.torch import load_file

    ckpt = ROOT / "checkpoints" / "liif-edsr-baseline.safetensors"
    if not ckpt.is_file():
        pytest.skip("checkpoints/liif-edsr-baseline.safetensors is not in this checkout")
    run = tmp_path / "runs" / "liif-edsr-baseline"
    run.mkdir(parents=True)
    shutil.copy(ckpt, run / CHECKPOINT)
    import json

    from safetensors import safe_open

    from anyres.train.config import load_config

    with safe_open(str(ckpt), framework="pt") as f:
        start = json.loads(f.metadata()["anyres"])["iteration"]  # the campaign's state moves on each session
    cfg = load_config(
        ROOT / "configs" / "liif-edsr-baseline.yaml",
        {
            "out_dir": str(run),
            "iterations": start + 1,
            "batch_size": 2,
            "data.patch": 8,
            "data.queries": 16,
            "val.data": None,
            "threads": 1,
        },
    )
    engine = train(cfg, images=_images(), log=_quiet)
    assert engine.iteration == start + 1 > 6130
    saved = load_file(str(ckpt))
    after = engine.state_tensors()
    assert after.keys() == saved.keys()
    assert after["optim.0.step"].item() == saved["optim.0.step"].item() + 1  # Adam continued, not restarted


def test_a_time_budget_stops_cleanly_saving_the_resume_state_and_weights(tmp_path, enhancer, monkeypatch):
    import anyres.train.engine as engine_module

    clock = [0.0]
    monkeypatch.setattr(engine_module.time, "monotonic", lambda: clock[0])
    config = _sr(tmp_path, enhancer)
    engine = build(config, images=_images(), log=_quiet)
    step = engine.step

    def slow_step():  # each step "takes" 25 s of a 1-minute budget: it stops after the third
        clock[0] += 25.0
        return step()

    engine.step = slow_step
    engine.deadline = clock[0] + 60.0
    engine.run()
    assert engine.budget_reached and not engine.stop_requested and engine.iteration == 3
    assert (tmp_path / CHECKPOINT).is_file() and (tmp_path / "model" / "model.safetensors").is_file()
    resumed = build(config, images=_images(), log=_quiet)
    assert resumed.resume() and resumed.iteration == 3
    with pytest.raises(Exception, match="budget-minutes"):
        train(config, log=_quiet, images=_images(), budget_minutes=0)


def test_ctrl_c_on_the_cli_saves_and_exits_130(tmp_path):
    import subprocess
    import sys

    (tmp_path / "hr").mkdir()
    for i, img in enumerate(_images(3, 40)):
        from anyres.io import write_image

        write_image(tmp_path / "hr" / f"{i}.png", img[None].float() / 255)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "model: {name: liif, args: {encoder: {name: edsr-baseline, args: {n_resblocks: 1, n_feats: 8}}, "
        "hidden: [16, 16]}}\n"
        f"data: {{train: [{tmp_path / 'hr'}], patch: 8, queries: 32}}\n"
        f"batch_size: 2\niterations: 100000\nprecision: fp32\nlog_every: 1\nout_dir: {tmp_path / 'run'}\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "anyres.cli", "train", str(cfg), "--threads", "1"], stderr=subprocess.PIPE, text=True
    )
    lines = []
    for line in proc.stderr:  # wait for a few steps
        lines.append(line)
        if " it 3/" in line:
            break
    proc.send_signal(signal.SIGINT)
    rest = proc.communicate(timeout=60)[1]
    assert proc.returncode == 130, "".join(lines) + rest
    assert "checkpoint and weights folder saved" in rest and (tmp_path / "run" / CHECKPOINT).is_file()


def test_the_resume_state_records_which_iterations_computed_in_which_precision(tmp_path, enhancer, monkeypatch):
    from anyres.train.recipes.sr import SRRecipe
    from anyres.train.states import read_state

    config = _sr(tmp_path, enhancer)  # precision fp32: the steps compute in float32
    config.iterations = 8
    first = build(config, images=_images(), log=_quiet)
    first.run(stop_after=2)
    again = build(config, images=_images(), log=_quiet)
    assert again.resume()
    again.run(stop_after=2)  # the same precision continues the span
    assert again.precision_spans() == [[0, 4, "float32"]]
    monkeypatch.setattr(SRRecipe, "computes_in", lambda self: "bf16")  # as on a CPU with bf16 instructions
    third = build(config, images=_images(), log=_quiet)
    assert third.resume() and third.precision_spans() == [[0, 4, "float32"]]  # nothing run yet, nothing added
    third.run(stop_after=3)
    meta, _ = read_state(tmp_path / CHECKPOINT, tensors=False)
    assert meta["precision_spans"] == [[0, 4, "float32"], [4, 7, "bf16"]]
    monkeypatch.undo()
    fourth = build(config, images=_images(), log=_quiet)
    assert fourth.resume()
    fourth.run()
    assert fourth.precision_spans() == [[0, 4, "float32"], [4, 7, "bf16"], [7, 8, "float32"]]
