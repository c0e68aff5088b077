"""Progress of long work, honest on and off a terminal.

On a terminal (stderr is a TTY) a :class:`Progress` is a tqdm bar. Off a terminal (a log file, a CI job) it
prints one line at most every ``ANYRES_PROGRESS_SECONDS`` (default 30) seconds: done / total, rate and time
left, so a long job is never silent and never floods the log. ``enabled=False`` silences it either way.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

__all__ = ["Progress", "interval"]


def interval() -> float:
    """Seconds between progress lines off a terminal (``ANYRES_PROGRESS_SECONDS``, default 30)."""
    try:
        return max(0.0, float(os.environ.get("ANYRES_PROGRESS_SECONDS", "30")))
    except ValueError:
        return 30.0


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def _count(n: float, unit_scale: bool) -> str:
    if not unit_scale or n < 1000:
        return f"{n:.0f}"
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= div:
            return f"{n / div:.1f}{suffix}"
    return f"{n:.0f}"


class Progress:
    """``total`` steps of work called ``label``; :meth:`update` after each, :meth:`write` for a line of its own.

    ``hide_single``: no bar on a terminal when ``total <= 1`` (the line per item says it all).
    """

    def __init__(
        self,
        total: int,
        *,
        label: str = "",
        unit: str = "it",
        unit_scale: bool = False,
        enabled: bool = True,
        hide_single: bool = False,
        stream: Any = None,
    ):
        self.total, self.label, self.unit, self.unit_scale = total, label, unit, unit_scale
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.done = 0
        self.postfix = ""
        self.start = self.last = time.monotonic()
        tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.bar = None
        if enabled and tty and not (hide_single and total <= 1):
            from tqdm import tqdm

            self.bar = tqdm(
                total=total, desc=label or None, unit=unit, unit_scale=unit_scale, leave=False, file=self.stream
            )
        self.lines = enabled and not tty

    def update(self, n: float = 1) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        elif self.lines:
            now = time.monotonic()
            if now - self.last >= interval() and self.done < self.total:
                self.last = now
                print(self.status(now), file=self.stream, flush=True)

    def status(self, now: float | None = None) -> str:
        elapsed = (now or time.monotonic()) - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        left = (self.total - self.done) / rate if rate > 0 else float("nan")
        pct = 100.0 * self.done / self.total if self.total else 100.0
        head = f"{self.label}: " if self.label else ""
        eta = _duration(left) if left == left else "?"
        return (
            f"{head}{_count(self.done, self.unit_scale)}/{_count(self.total, self.unit_scale)} {self.unit} "
            f"({pct:.0f}%), {_count(rate, self.unit_scale)} {self.unit}/s, {eta} left"
            + (f" ({self.postfix})" if self.postfix else "")
        )

    def set_postfix(self, values: dict[str, Any]) -> None:
        """Numbers shown after the bar (on a terminal) or after the status line (off one)."""
        self.postfix = ", ".join(f"{k}={v}" for k, v in values.items())
        if self.bar is not None:
            self.bar.set_postfix(values)

    def write(self, line: str) -> None:
        """A line on the stream that does not break the bar."""
        if self.bar is not None:
            self.bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
