"""scripts/earlier_weights.py: an earlier shipped version of a weights folder, written back from git history."""

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "earlier_weights.py"


def _git(repo, *args):
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, check=True, capture_output=True
    )


def _ship(repo, iterations, payload):
    folder = repo / "src" / "anyres" / "weights" / "m"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"arch": "liif", "iterations": iterations}))
    (folder / "model.safetensors").write_bytes(payload)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", f"m at {iterations}")


def _run(repo, *args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=repo, capture_output=True, text=True)


def test_the_newest_version_with_those_iterations_is_written(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    _ship(repo, 100, b"first")
    _ship(repo, 200, b"second")
    _ship(repo, 200, b"second, as float16")  # weights changed, config not: the newest copy wins
    _ship(repo, 300, b"third")
    listing = _run(repo, "m")
    assert listing.returncode == 0
    assert [line.split()[-1] for line in listing.stdout.splitlines()] == ["300", "200", "200", "100"]
    for its, payload in ((200, b"second, as float16"), (100, b"first")):
        out = tmp_path / f"out{its}"
        assert _run(repo, "m", "--iterations", str(its), "--out", str(out)).returncode == 0
        assert (out / "model.safetensors").read_bytes() == payload
        assert json.loads((out / "config.json").read_text())["iterations"] == its
    missing = _run(repo, "m", "--iterations", "150", "--out", str(tmp_path / "none"))
    assert missing.returncode == 2
    assert "no version of m with 150 iterations" in missing.stderr
    assert not (tmp_path / "none").exists()
