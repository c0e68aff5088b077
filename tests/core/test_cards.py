"""Model cards carry a Hugging Face-style metadata header built from config.json and measured values."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from anyres.hub import CARD, CONFIG, WEIGHTS_DIR, card_header, with_card_header

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted(p.parent for p in WEIGHTS_DIR.glob(f"*/{CONFIG}"))


def _front(text):
    assert text.startswith("---\n")
    end = text.index("\n---\n", 4)
    return yaml.safe_load(text[4:end]), text[end + 5 :].lstrip("\n")


def test_header_from_a_config_with_metrics_and_replacement_is_idempotent():
    config = {"arch": "liif", "name": "m", "training": {"data": ["../shared/data/train/T91", "BSD200"]}}
    metrics = [
        {"dataset": "Set5", "type": "psnr", "value": 36.7, "name": "PSNR (Y) x2"},
        {"dataset": "Set14", "type": "psnr", "value": 32.4, "name": "PSNR (Y) x2"},
    ]
    header = card_header(config, metrics)
    meta, rest = _front(header + "\n# m\n")
    assert meta["license"] == "mit" and meta["library_name"] == "anyres"
    assert {"super-resolution", "liif"} <= set(meta["tags"]) and meta["datasets"] == ["T91", "BSD200"]
    results = meta["model-index"][0]["results"]
    assert [r["dataset"]["name"] for r in results] == ["Set5", "Set14"]
    assert results[1]["metrics"] == [{"type": "psnr", "value": 32.4, "name": "PSNR (Y) x2"}]
    card = with_card_header("# m\n\ntext\n", header)
    assert with_card_header(card, header) == card and card.count("---\n") == 2 and card.endswith("# m\n\ntext\n")


@pytest.mark.parametrize("folder", SHIPPED, ids=[p.name for p in SHIPPED])
def test_every_shipped_card_has_a_header_with_measured_values(folder):
    meta, rest = _front((folder / CARD).read_text())
    config = json.loads((folder / CONFIG).read_text())
    assert meta["license"] == "mit" and config["arch"] in meta["tags"] and meta["datasets"]
    metrics = [m for r in meta["model-index"][0]["results"] for m in r["metrics"]]
    assert metrics and all(isinstance(m["value"], float) for m in metrics)
    assert all(10 < m["value"] < 50 for m in metrics if m["type"] == "psnr")
    assert all(0 < m["value"] < 1 for m in metrics if m["type"] == "lpips")
    assert {m["type"] for m in metrics} <= {"psnr", "lpips"} and any(m["type"] == "psnr" for m in metrics)
    assert rest.startswith("# Model card")


def test_shipped_headers_are_current():
    res = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "card_metadata.py"), "--check"], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize("folder", SHIPPED, ids=[p.name for p in SHIPPED])
def test_a_card_names_every_float32_stretch_its_training_record_holds(folder):
    spans = json.loads((folder / CONFIG).read_text()).get("training", {}).get("precision_spans", [])
    card = (folder / CARD).read_text()
    for first, last, _ in [s for s in spans if s[2] == "float32"]:
        assert f"{first:,} to {last:,}" in card, (first, last)
