"""The shared input checks: what they accept, what they return and the one-line messages they raise."""

import math

import pytest
import torch

from anyres.checks import check_choices, check_prob, check_probs, check_range, check_scale, check_shape
from anyres.errors import ConfigError


def test_check_shape_fixes_int_axes_and_labels_str_axes():
    assert check_shape(torch.zeros(2, 7, 2), "coord", ("B", "Q", 2)) == (2, 7, 2)
    with pytest.raises(ValueError, match=r"^coord must be a float \(B, Q, 2\) tensor, got shape \(2, 7, 3\)$"):
        check_shape(torch.zeros(2, 7, 3), "coord", ("B", "Q", 2))
    with pytest.raises(ValueError, match=r"\(k, k\) tensor, got shape \(1, 3, 3\)"):
        check_shape(torch.zeros(1, 3, 3), "kernel", ("k", "k"))
    with pytest.raises(ValueError, match=r"\(4,\) tensor, got shape \(4,\) of dtype torch.int64"):
        check_shape(torch.zeros(4, dtype=torch.long), "v", (4,))
    with pytest.raises(ValueError, match="got shape list"):
        check_shape([0.0, 1.0], "v", (2,))


def test_config_numbers_raise_config_errors():
    assert check_scale(3) == 3.0 and isinstance(check_scale(3), float)
    assert check_prob(1, "p") == 1.0
    assert check_probs([0.25, 0.75], "p", 2) == (0.25, 0.75)
    for bad in (0.5, math.inf, True, "2"):
        with pytest.raises(ConfigError, match=f"scale must be a number >= 1, got {bad!r}"):
            check_scale(bad)
    with pytest.raises(ConfigError, match=r"p must be a probability in \[0, 1\], got 1.5"):
        check_prob(1.5, "p")
    with pytest.raises(ConfigError, match="sum to 1"):
        check_probs([0.5, 0.6], "p", 2)
    assert check_choices(["a"], "modes", ("a", "b")) == ("a",)
    with pytest.raises(ConfigError, match=r"modes: unknown value\(s\) \['c'\]"):
        check_choices(["a", "c"], "modes", ("a", "b"))
    with pytest.raises(ConfigError, match="non-empty list"):
        check_choices("a", "modes", ("a", "b"))


def test_check_range_plain_and_scaled():
    # Plain ranges come back as floats (ints when integer); scaled ones as written.
    assert check_range([1, 2], "r") == (1.0, 2.0) and isinstance(check_range([1, 2], "r")[0], float)
    assert check_range([1.0, 5.0], "r", integer=True) == (1, 5)
    assert check_range([0, [1, 0.5]], "r", scaled=True) == (0, (1, 0.5))
    with pytest.raises(ConfigError, match=r"r must be a \[low, high\] range of numbers, got \[0, \[1, 0.5\]\]"):
        check_range([0, [1, 0.5]], "r")
    # 3 - 0.5 s crosses 1 between scales 4 and 8.
    with pytest.raises(ConfigError, match=r"low must be <= high, got \[1, \[3, -0.5\]\] \(at scale 8: 1 > -1\)"):
        check_range([1, [3, -0.5]], "r", scaled=True)
    with pytest.raises(ConfigError, match=r"r must be > 0, got \[0, 1\]"):
        check_range([0, 1], "r", positive=True)
    with pytest.raises(ConfigError, match=r"r must be <= 100, got \[1, 101\]"):
        check_range([1, 101], "r", minimum=1, maximum=100)
    with pytest.raises(ConfigError, match="whole numbers"):
        check_range([1, 2.5], "r", integer=True)
    with pytest.raises(ConfigError, match=r"must be a \[low, high\] range, got 3"):
        check_range(3, "r")
