"""Every CLI choice and `anyres models` come from the registries: they list exactly what the registries hold."""

import click
from click.testing import CliRunner

from anyres.cli import main
from anyres.metrics import PROTOCOLS
from anyres.registry import DEGRADATIONS, ENHANCERS, METRICS, RESAMPLERS, TASKS, UPSCALERS
from anyres.sr.render import RENDER_MODES


def _option(command, name):
    return next(p for p in main.commands[command].params if p.name == name)


def _choices(command, name):
    kind = _option(command, name).type
    assert isinstance(kind, click.Choice), f"{command} --{name} is not a choice"
    return list(kind.choices)


def test_choices_are_the_registries():
    assert (
        _choices("evaluate", "degradation") == DEGRADATIONS.names("synthetic") == ["classical", "bsrgan", "realesrgan"]
    )
    assert _choices("evaluate", "task") == list(TASKS) == ["retouch", "lowlight"]
    assert _choices("evaluate", "resampler") == _choices("enhance", "resampler") == list(RESAMPLERS)
    assert _choices("evaluate", "mode") == _choices("upscale", "mode") == list(RENDER_MODES)
    assert _choices("evaluate", "protocol") == list(PROTOCOLS)
    assert list(METRICS) == ["psnr", "ssim", "lpips"]  # report order


def test_free_text_options_name_every_registered_entry_in_their_help():
    for command, name, names in (
        ("upscale", "model", UPSCALERS),
        ("enhance", "model", ENHANCERS),
        ("degrade", "pipeline", DEGRADATIONS),
        ("evaluate", "metrics", METRICS),
    ):
        help_text = _option(command, name).help
        assert names and all(n in help_text for n in names), (command, name, help_text)


def test_models_lists_exactly_the_upscaler_and_enhancer_registries():
    res = CliRunner().invoke(main, ["models"])
    assert res.exit_code == 0, res.output
    upscalers, enhancers = res.stdout.split("\nEnhancement models (anyres enhance --model):\n")
    listed = [[line.split()[0] for line in part.splitlines() if line.strip()] for part in (upscalers, enhancers)]
    assert listed[0] == [*UPSCALERS, "PATH"]
    assert sorted(listed[1]) == sorted([*ENHANCERS, "PATH"]) and listed[1][-1] == "PATH"
    for entry in [*UPSCALERS.values(), *ENHANCERS.values()]:
        assert entry.description in res.stdout
