"""``anyres serve``'s flags: this machine only unless --allow-remote, which warns."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from anyres.cli import main
from anyres.cli.serve import is_local

uvicorn = pytest.importorskip("uvicorn")
pytest.importorskip("fastapi")


@pytest.fixture
def runs(monkeypatch):
    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    return calls


def test_localhost_by_default(runs):
    result = CliRunner().invoke(main, ["serve", "--threads", "1"])
    assert result.exit_code == 0, result.output
    ((app, kw),) = runs
    assert kw["host"] == "127.0.0.1" and kw["port"] == 7860
    assert "http://127.0.0.1:7860/" in result.output and "warning" not in result.output
    app.state.jobs.stop()


def test_another_address_needs_allow_remote(runs):
    result = CliRunner().invoke(main, ["serve", "--host", "0.0.0.0"])
    assert result.exit_code == 1 and runs == []
    assert "anyres: error: --host 0.0.0.0 would serve beyond this machine; add --allow-remote" in result.output
    result = CliRunner().invoke(main, ["serve", "--host", "0.0.0.0", "--port", "8000", "--allow-remote"])
    assert result.exit_code == 0, result.output
    assert "anyres: warning: serving on 0.0.0.0:8000, beyond this machine" in result.output
    assert runs[0][1]["host"] == "0.0.0.0"
    runs[0][0].state.jobs.stop()


@pytest.mark.parametrize(
    "host, local",
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("127.0.0.2", True),
        ("0.0.0.0", False),
        ("192.168.1.4", False),
        ("example.org", False),
    ],
)
def test_is_local(host, local):
    assert is_local(host) is local
