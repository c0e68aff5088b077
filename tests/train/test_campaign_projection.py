"""benchmarks/campaign_projection.py: its two curve fits recover known curves, and the power fit's ceiling
decides whether a target is within reach."""

import importlib.util
import math
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "campaign_projection.py"
_SPEC = importlib.util.spec_from_file_location("campaign_projection", _PATH)
projection = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(projection)

ITERATIONS = [12_000, 14_000, 16_000, 19_000, 23_000, 26_000, 30_000]


def test_the_log_fit_recovers_a_log_curve():
    a, b, rms = projection.fit_log([(x, 20.0 + 0.3 * math.log(x)) for x in ITERATIONS])
    assert a == pytest.approx(20.0, abs=1e-9) and b == pytest.approx(0.3, abs=1e-10) and rms < 1e-9


def test_the_power_fit_recovers_a_levelling_off_curve():
    c, k, alpha, rms = projection.fit_power([(x, 33.4 - 40.0 * x**-0.7) for x in ITERATIONS])
    assert alpha == pytest.approx(0.7) and c == pytest.approx(33.4, abs=1e-6) and k == pytest.approx(40.0, rel=1e-6)
    assert rms < 1e-9


def _record(curve):
    scales = projection.SCALES
    points = [{"iteration": x, "weights": "average", "psnr": {s: curve(x) for s in scales}} for x in ITERATIONS]
    return {"target": dict.fromkeys(scales, 33.3), "points": points}


def test_a_target_above_the_ceiling_is_out_of_reach_and_one_below_it_is_reached_where_the_curve_says():
    table = projection.power_projection(_record(lambda x: 33.25 - 40.0 * x**-0.7), 0, 3.0)
    assert table.count("above the ceiling") == 5
    table = projection.power_projection(_record(lambda x: 33.4 - 200.0 * x**-0.7), 0, 3.0)
    reach = (200.0 / 0.1) ** (1 / 0.7)  # 33.4 - 200 x^-0.7 = 33.3 at about 52,000
    assert f"| {reach:,.0f} |" in table and "above the ceiling" not in table
