"""Measuring models: the SR literature's protocols, enhancement on synthetic damage, side-by-side sheets."""

from anyres.evaluation.benchmark import (
    crop_for_scale,
    evaluate,
    evaluate_task,
    format_table,
    lpips_score,
    make_damaged,
    make_degraded_lr,
    make_lr,
    parse_metrics,
    parse_scales,
)

__all__ = [
    "evaluate",
    "evaluate_task",
    "format_table",
    "make_lr",
    "make_degraded_lr",
    "make_damaged",
    "crop_for_scale",
    "parse_scales",
    "parse_metrics",
    "lpips_score",
]
