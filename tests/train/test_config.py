"""The one YAML loader (anyres.train.config): every shipped config loads, each kind of mistake is one
ConfigError line naming the key, --set overrides, and configs built in Python are checked the same way."""

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from anyres.cli import main
from anyres.errors import ConfigError
from anyres.train.config import TASKS, load_config
from anyres.train.recipes.enhance import EnhanceTrainConfig
from anyres.train.recipes.lmar import LMARTrainConfig
from anyres.train.recipes.sr import DataConfig, TrainConfig

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
KIND = {"deeplpf": EnhanceTrainConfig, "unet": EnhanceTrainConfig, "lmar": LMARTrainConfig}


@pytest.mark.parametrize("path", sorted(CONFIGS.rglob("*.yaml")), ids=lambda p: str(p.relative_to(CONFIGS)))
def test_every_shipped_config_loads_as_its_task_and_round_trips(path, tmp_path):
    cfg = load_config(path)
    assert type(cfg) is KIND.get(path.stem.split("-")[0], TrainConfig)
    raw = yaml.safe_load(path.read_text())
    assert cfg.name == raw["name"] and cfg.out_dir == raw["out_dir"] and cfg.iterations == raw["iterations"]
    # The resolved config (written to config.yaml and the checkpoint) reads back to the same config.
    assert load_config(_write(tmp_path / "resolved.yaml", yaml.safe_dump(cfg.to_dict(), sort_keys=False))) == cfg


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _error(tmp_path, text, overrides=None):
    with pytest.raises(ConfigError) as err:
        load_config(_write(tmp_path / "c.yaml", text), overrides)
    message = str(err.value)
    assert "\n" not in message and message.startswith(str(tmp_path / "c.yaml") + ": ")
    return message.split(": ", 1)[1]


def test_a_list_field_given_a_string_is_one_error(tmp_path):
    assert (
        _error(tmp_path, "data: {train: ../photos}\n") == "data.train: input should be a valid list (got '../photos')"
    )


def test_an_unknown_key_is_one_error_listing_the_valid_ones(tmp_path):
    assert (
        _error(tmp_path, "optim: {lr: 1.0e-4, milestone: [5]}\n")
        == "optim.milestone: unknown key; valid keys here: cooldown, gamma, lr, milestones, new_modules_lr_scale, warmup"
    )
    assert _error(tmp_path, "task: lmar\nenhancer: x\nbatchsize: 2\n").startswith("batchsize: unknown key; ")


def test_a_negative_iteration_count_is_one_error(tmp_path):
    assert _error(tmp_path, "iterations: -5\n") == "iterations: input should be greater than or equal to 0 (got -5)"
    assert _error(tmp_path, "task: enhance\n", {"iterations": -1}).startswith("iterations: input should be greater")


def test_a_wrong_type_is_one_error(tmp_path):
    assert _error(tmp_path, "batch_size: sixteen\n").startswith("batch_size: input should be a valid integer")
    assert _error(tmp_path, "data: {augment: maybe}\n").startswith("data.augment: input should be a valid boolean")
    assert _error(tmp_path, "precision: fp16\n") == "precision: input should be 'bf16' or 'fp32' (got 'fp16')"


def test_a_rule_across_keys_and_an_unknown_task_are_one_error(tmp_path):
    assert "query_layout: patch" in _error(tmp_path, "gan_weight: 0.1\n")
    assert _error(tmp_path, "task: denoise\n").startswith("task must be one of 'enhance', 'lmar'")


def test_several_mistakes_share_the_one_line(tmp_path):
    message = _error(tmp_path, "iterations: -1\nseed: x\n")
    assert message.startswith("iterations: ") and "; seed: input should be a valid integer" in message


def test_overrides_set_nested_keys_and_numbers_are_coerced(tmp_path):
    path = _write(tmp_path / "c.yaml", "optim: {lr: 2e-4}\nval: {scales: [2, 3.5]}\n")
    cfg = load_config(path, {"data.patch": 16, "optim.milestones": [4], "val.data": None, "iterations": 9})
    assert cfg.optim.lr == 2e-4 and isinstance(cfg.optim.lr, float)  # PyYAML reads 2e-4 as a string
    assert (cfg.data.patch, cfg.optim.milestones, cfg.val.data, cfg.iterations) == (16, [4], None, 9)
    assert cfg.val.scales == [2, 3.5] and isinstance(cfg.val.scales[0], int)  # as written: config.yaml unchanged
    with pytest.raises(ConfigError, match="cannot set 'iterations.x'"):
        load_config(path, {"iterations": 3, "iterations.x": 1})


def test_python_built_configs_raise_the_same_errors():
    with pytest.raises(ConfigError, match=r"^config: data.patch: input should be greater than or equal to 1"):
        TrainConfig(data={"patch": 0})
    cfg = TrainConfig()
    with pytest.raises(ConfigError, match=r"^config: iterations: input should be greater"):
        cfg.iterations = -1
    with pytest.raises(ConfigError, match="^config: perceptual and GAN losses need data.query_layout: patch"):
        cfg.gan_weight = 0.1
    cfg.data.query_layout = "random"  # a section alone cannot see the rule across sections: checked at build
    cfg.data = DataConfig(query_layout="patch")
    cfg.gan_weight = 0.1
    cfg.data.query_layout = "random"
    with pytest.raises(ConfigError, match="query_layout: patch"):
        cfg.checked()
    assert DataConfig(query_layout="patch").query_layout == "patch"


def test_every_yaml_task_is_registered():
    assert set(TASKS) == {None, "enhance", "lmar"}


def test_cli_prints_a_config_error_as_one_line(tmp_path):
    path = _write(tmp_path / "c.yaml", "iterations: 2\n")
    res = CliRunner().invoke(main, ["train", str(path), "--set", "data.train=photos"])
    assert res.exit_code == 1 and res.stderr.count("\n") == 1
    assert res.stderr.startswith("anyres: error:") and "data.train: input should be a valid list" in res.stderr
