"""Progress off a terminal: one status line at most every ANYRES_PROGRESS_SECONDS, none when disabled."""

import io

from anyres.progress import Progress


class _Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_off_a_terminal_one_line_per_interval_with_rate_and_time_left(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr("anyres.progress.time.monotonic", clock)
    monkeypatch.setenv("ANYRES_PROGRESS_SECONDS", "30")
    out = io.StringIO()  # not a TTY
    bar = Progress(100, label="evaluate liif", unit="img", stream=out)
    for _ in range(100):
        clock.now += 1.0  # 1 s per image: a line at 30, 60, 90 s, none at the end (the job says it is done)
        bar.update(1)
    lines = out.getvalue().splitlines()
    assert lines == [
        "evaluate liif: 30/100 img (30%), 1 img/s, 1m10s left",
        "evaluate liif: 60/100 img (60%), 1 img/s, 40s left",
        "evaluate liif: 90/100 img (90%), 1 img/s, 10s left",
    ]
    bar.write("a line of its own")
    assert out.getvalue().endswith("a line of its own\n")


def test_disabled_progress_prints_nothing(monkeypatch):
    monkeypatch.setenv("ANYRES_PROGRESS_SECONDS", "0")
    out = io.StringIO()
    bar = Progress(10, stream=out, enabled=False)
    for _ in range(10):
        bar.update(1)
    assert out.getvalue() == ""
    on = Progress(10, stream=out, unit="px", unit_scale=True)
    on.total = 2_000_000
    on.update(1_500_000)
    assert out.getvalue().startswith("1.5M/2.0M px (75%)")
