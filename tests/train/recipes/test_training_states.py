"""anyres.train.states and ``anyres convert`` / ``--model`` on a run's own training state (checkpoint.safetensors)."""

import json

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file, save_file
from test_sr_recipe import _config, _images

from anyres.cli import main
from anyres.errors import AnyresError
from anyres.hub import load_network
from anyres.train.engine import CHECKPOINT, build
from anyres.train.states import read_state, state_to_folder


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny SR run with an average of the weights, stopped at 5 of 6 iterations (model/ written at 5)."""
    tmp = tmp_path_factory.mktemp("states")
    t = build(_config(tmp, ema=0.5), images=_images(), log=lambda m: None)
    t.run(stop_after=5)
    t.save_checkpoint()
    return tmp / "run", t


def _equal(net, state):
    return all(torch.equal(v, state[k]) for k, v in net.state_dict().items())


def test_the_average_and_the_trained_weights_equal_the_run_and_its_folders(run, tmp_path):
    folder, trainer = run
    avg = state_to_folder(folder / CHECKPOINT, tmp_path / "avg")
    raw = state_to_folder(folder / CHECKPOINT, tmp_path / "raw", weights="trained")
    net_avg, cfg_avg = load_network(avg)
    net_raw, cfg_raw = load_network(raw)
    assert _equal(net_avg, trainer.recipe.ema_net.state_dict()) and _equal(net_raw, trainer.recipe.net.state_dict())
    assert not _equal(net_avg, trainer.recipe.net.state_dict())
    # The same tensors the run's own folders hold (model/ = the average, model-raw/ = the trained weights).
    for mine, theirs in ((avg, folder / "model"), (raw, folder / "model-raw")):
        a, b = load_file(mine / "model.safetensors"), load_file(theirs / "model.safetensors")
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert cfg_avg["iterations"] == 5 and cfg_avg["ema"] == 0.5 and "ema" not in cfg_raw
    assert cfg_avg["source"]["file"] == CHECKPOINT and len(cfg_avg["source"]["sha256"]) == 64
    assert "average of the weights" in (avg / "README.md").read_text()


def test_reading_the_metadata_alone_gives_the_same_metadata_and_no_tensors(run):
    folder, trainer = run
    meta, tensors = read_state(folder / CHECKPOINT)
    alone, none = read_state(folder / CHECKPOINT, tensors=False)
    assert alone == meta and alone["iteration"] == trainer.iteration == 5 and none == {} and tensors


def test_a_state_without_an_average_gives_its_trained_weights(tmp_path):
    t = build(_config(tmp_path), images=_images(), log=lambda m: None)
    t.run(stop_after=2)
    path = t.save_checkpoint()
    net, cfg = load_network(state_to_folder(path, tmp_path / "out"))
    assert _equal(net, t.recipe.net.state_dict()) and "ema" not in cfg and cfg["iterations"] == 2


def test_upscale_from_the_state_equals_upscale_from_its_converted_folder(run, tmp_path):
    from anyres.io import write_image

    folder, _ = run
    image = tmp_path / "in.png"
    write_image(image, torch.rand(3, 12, 10, generator=torch.Generator().manual_seed(0)))

    def invoke(*args):
        return CliRunner().invoke(main, [str(a) for a in args])

    res = invoke("upscale", image, "--scale", "2.5", "--model", folder / CHECKPOINT, "-o", tmp_path / "a.png")
    assert res.exit_code == 0, res.output
    res = invoke("convert", folder / CHECKPOINT, "-o", tmp_path / "folder")
    assert res.exit_code == 0, res.output
    res = invoke("upscale", image, "--scale", "2.5", "--model", tmp_path / "folder", "-o", tmp_path / "b.png")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    # A weights folder's own model.safetensors loads as that folder.
    res = invoke(
        "upscale",
        image,
        "--scale",
        "2.5",
        "--model",
        tmp_path / "folder" / "model.safetensors",
        "-o",
        tmp_path / "c.png",
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "c.png").read_bytes() == (tmp_path / "b.png").read_bytes()


def test_bad_states_get_one_line_errors_and_no_folder(run, tmp_path):
    folder, _ = run
    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, plain)  # no anyres metadata
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not a safetensors file")
    tensors = load_file(folder / CHECKPOINT)
    meta = {"iteration": 1, "config": {"name": "x"}}  # names no network
    nospec = tmp_path / "nospec.safetensors"
    save_file(tensors, nospec, metadata={"anyres": json.dumps(meta)})
    for path, words in ((plain, "not an anyres training state"), (broken, "not a readable"), (nospec, "names no")):
        with pytest.raises(AnyresError, match=words):
            state_to_folder(path, tmp_path / "out")
        assert not (tmp_path / "out").exists()
    res = CliRunner().invoke(main, ["convert", str(plain), "-o", str(tmp_path / "out")])
    assert res.exit_code != 0 and "not an anyres training state" in res.output and "Traceback" not in res.output
    # A non-empty output folder is kept; --weights only applies to training states.
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("x")
    with pytest.raises(AnyresError, match="not empty"):
        state_to_folder(folder / CHECKPOINT, tmp_path / "full")
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["keep.txt"]
    pth = tmp_path / "x.pth"
    torch.save({"a": torch.zeros(1)}, pth)
    res = CliRunner().invoke(main, ["convert", str(pth), "-o", str(tmp_path / "o2"), "--weights", "trained"])
    assert res.exit_code != 0 and "training states" in res.output
