"""The JSON API of ``anyres serve`` (Starlette's TestClient, no network): results equal the command line's."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("multipart")
from fastapi.testclient import TestClient  # noqa: E402

from anyres.cli import main  # noqa: E402
from anyres.serve.app import create_app, safe_name  # noqa: E402

FINAL = ("done", "failed", "cancelled")


@pytest.fixture
def client(tmp_path):
    with TestClient(create_app(threads=1, root=tmp_path / "jobs")) as c:
        yield c


def _png(path: Path, h: int, w: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def _submit(client: TestClient, path: Path, name: str | None = None, **fields) -> str:
    with path.open("rb") as f:
        r = client.post(
            "/api/jobs", files={"file": (name or path.name, f)}, data={k: str(v) for k, v in fields.items()}
        )
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"id"}
    return r.json()["id"]


def _wait(client: TestClient, job_id: str, timeout: float = 180) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        view = client.get(f"/api/jobs/{job_id}").json()
        assert set(view) == {"status", "progress", "error"}
        assert 0 <= view["progress"] <= 1
        if view["status"] in FINAL:
            return view
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def _cli(tmp_path: Path, *args: str) -> Path:
    out = tmp_path / "cli_out"
    result = CliRunner().invoke(main, [*args, "--out-dir", str(out), "--threads", "1"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    (made,) = out.iterdir()
    return made


def _same_file_as_cli(client, tmp_path, job_id, cli_file):
    got = client.get(f"/api/jobs/{job_id}/result")
    assert got.status_code == 200
    assert got.content == cli_file.read_bytes()
    return got


def test_upscale_bicubic_equals_the_command_line(client, tmp_path):
    src = _png(tmp_path / "tiny.png", 12, 16)
    job = _submit(client, src, task="upscale", model="bicubic", scale=2.5)
    assert _wait(client, job) == {"status": "done", "progress": 1.0, "error": None}
    record = client.get(f"/api/jobs/{job}/record").json()
    assert record["command"] == "anyres upscale tiny.png --model bicubic --scale 2.5 --seed 0"
    assert record["output"] == "tiny_anyres.png"
    cli = _cli(tmp_path, "upscale", str(src), "--model", "bicubic", "--scale", "2.5")
    got = _same_file_as_cli(client, tmp_path, job, cli)
    assert got.headers["content-type"] == "image/png"
    assert 'filename="tiny_anyres.png"' in got.headers["content-disposition"]
    assert Image.open(cli).size == (40, 30)
    # The download removed the job's files; a second download says so.
    assert not (tmp_path / "jobs" / job).exists()
    again = client.get(f"/api/jobs/{job}/result")
    assert again.status_code == 410 and "already downloaded" in again.json()["error"]


def test_upscale_liif_width_height_equals_the_command_line(client, tmp_path):
    src = _png(tmp_path / "small.png", 24, 24, seed=1)
    job = _submit(client, src, task="upscale", model="liif", width=50, height=37, seed=3)
    assert _wait(client, job)["status"] == "done"
    cli = _cli(tmp_path, "upscale", str(src), "--model", "liif", "--size", "50x37", "--seed", "3")
    _same_file_as_cli(client, tmp_path, job, cli)
    assert Image.open(cli).size == (50, 37)


def test_default_model_is_the_command_lines(client, tmp_path):
    src = _png(tmp_path / "d.png", 24, 24, seed=2)
    job = _submit(client, src, width=30)  # task upscale, model liif: what `anyres upscale` runs by default
    assert _wait(client, job)["status"] == "done"
    assert client.get(f"/api/jobs/{job}/record").json()["model"] == "liif"
    _same_file_as_cli(client, tmp_path, job, _cli(tmp_path, "upscale", str(src), "--width", "30"))


def test_enhance_equals_the_command_line(client, tmp_path):
    src = _png(tmp_path / "photo.png", 32, 40, seed=5)
    job = _submit(client, src, task="enhance")
    assert _wait(client, job)["status"] == "done"
    record = client.get(f"/api/jobs/{job}/record").json()
    assert record["command"] == "anyres enhance photo.png --model deeplpf-retouch"
    assert record["output"] == "photo_enhanced.png"
    _same_file_as_cli(client, tmp_path, job, _cli(tmp_path, "enhance", str(src)))


def test_16_bit_png_stays_16_bit(client, tmp_path):
    import png

    rng = np.random.default_rng(4)
    pixels = rng.integers(0, 65536, (10, 9 * 3), dtype=np.uint16)
    src = tmp_path / "deep.png"
    with src.open("wb") as f:
        png.Writer(9, 10, greyscale=False, bitdepth=16).write(f, pixels.tolist())
    job = _submit(client, src, task="upscale", model="bicubic", scale=2)
    assert _wait(client, job)["status"] == "done"
    cli = _cli(tmp_path, "upscale", str(src), "--model", "bicubic", "--scale", "2")
    got = _same_file_as_cli(client, tmp_path, job, cli)
    w, h, _rows, info = png.Reader(bytes=got.content).read()
    assert (w, h, info["bitdepth"]) == (18, 20, 16)


def test_cancel_frees_the_worker(client, tmp_path):
    src = _png(tmp_path / "big.png", 24, 24)
    slow = _submit(client, src, model="liif", width=3000, height=3000)  # minutes of rendering
    queued = _submit(client, src, model="bicubic", scale=2)
    end = time.monotonic() + 90
    while client.get(f"/api/jobs/{slow}").json()["progress"] == 0 and time.monotonic() < end:
        time.sleep(0.05)
    view = client.get(f"/api/jobs/{slow}").json()
    assert view["status"] == "running" and 0 < view["progress"] < 1  # read from the render's progress lines
    assert client.get(f"/api/jobs/{queued}").json()["status"] == "queued"
    # A queued job is cancelled without running.
    assert client.delete(f"/api/jobs/{queued}").json()["status"] == "cancelled"
    r = client.delete(f"/api/jobs/{slow}")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    assert _wait(client, queued)["status"] == "cancelled"
    assert not (tmp_path / "jobs" / slow).exists()
    assert client.get(f"/api/jobs/{slow}/result").status_code == 409
    # The worker is free: the next job runs to the end.
    after = _submit(client, src, model="bicubic", scale=2)
    assert _wait(client, after, timeout=60)["status"] == "done"


def test_blind_runs_upscale_blind_and_cancels(client, tmp_path):
    src = _png(tmp_path / "lr.png", 24, 24)
    job = _submit(client, src, task="blind", model="liif", scale=2, seed=1)
    record = client.get(f"/api/jobs/{job}/record").json()
    assert record["command"] == "anyres upscale lr.png --model liif --scale 2 --seed 1 --blind"
    assert client.delete(f"/api/jobs/{job}").json()["status"] == "cancelled"
    assert _wait(client, job)["status"] == "cancelled"


def test_bad_image_fails_with_the_commands_one_line_error(client, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"this is not a PNG file")
    job = _submit(client, bad, model="bicubic", scale=2)
    view = _wait(client, job)
    assert view["status"] == "failed"
    error = view["error"]
    assert "\n" not in error and error.startswith("anyres: error: ")
    assert "broken.png" in error and str(tmp_path) not in error
    result = CliRunner().invoke(
        main, ["upscale", str(bad), "--model", "bicubic", "--scale", "2", "--out-dir", str(tmp_path / "o")]
    )
    assert error.replace("broken.png", str(bad)) in result.output
    assert not (tmp_path / "jobs" / job).exists()


def test_oversized_upload_is_413(tmp_path):
    with TestClient(create_app(threads=1, max_upload_mb=0.01, root=tmp_path / "jobs")) as c:
        big = _png(tmp_path / "noise.png", 100, 100)  # ~30 KB of noise: over 10 KiB
        with big.open("rb") as f:
            r = c.post("/api/jobs", files={"file": ("noise.png", f)}, data={"scale": "2"})
        assert r.status_code == 413
        assert "upload too large" in r.json()["error"] and "0.01 MB" in r.json()["error"]

        def chunks():  # no Content-Length: refused once the streamed body passes the limit
            yield b'--x\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'
            for _ in range(40):
                yield b"\0" * 1024

        r = c.post("/api/jobs", content=chunks(), headers={"content-type": "multipart/form-data; boundary=x"})
        assert r.status_code == 413 and "upload too large" in r.json()["error"]
        assert list((tmp_path / "jobs").iterdir()) == []


@pytest.mark.parametrize(
    "name, shown",
    [
        ("../../etc/passwd.png", "passwd.png"),
        ("..\\..\\windows\\evil.PNG", "evil.png"),
        ("/abs/path/x.png", "x.png"),
        ("C:\\x\\y.tif", "y.tif"),
        ("..", "image"),
        ("a b$(rm -rf).png", "a_b_rm_-rf.png"),
        ("noext", "noext"),
        ("weird.p/ng", "ng"),
    ],
)
def test_client_file_names_never_name_a_server_path(name, shown):
    assert safe_name(name)[0] == shown


def test_path_traversal_upload_stays_in_the_job_folder(client, tmp_path):
    src = _png(tmp_path / "t.png", 8, 8)
    job = _submit(client, src, name="../../../../tmp/escaped.png", model="bicubic", scale=2)
    folder = tmp_path / "jobs" / job
    assert [p.name for p in (folder / "in").iterdir()] == ["input.png"]
    assert _wait(client, job)["status"] == "done"
    assert client.get(f"/api/jobs/{job}/record").json()["input"] == "escaped.png"
    r = client.get(f"/api/jobs/{job}/result")
    assert 'filename="escaped_anyres.png"' in r.headers["content-disposition"]
    assert not (tmp_path / "escaped.png").exists()


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"task": "sharpen", "scale": "2"}, "unknown task 'sharpen'"),
        ({"model": "nope", "scale": "2"}, "unknown model 'nope' for upscale"),
        ({"model": "../../weights", "scale": "2"}, "unknown model"),
        ({"task": "blind", "model": "bicubic", "scale": "2"}, "unknown model 'bicubic' for blind"),
        ({"task": "enhance", "model": "liif"}, "unknown model 'liif' for enhance"),
        ({"task": "enhance", "scale": "2"}, "own size"),
        ({}, "give either scale, or width and/or height"),
        ({"scale": "2", "width": "10"}, "give either scale"),
        ({"scale": "two"}, "scale must be a number"),
        ({"scale": "-1"}, "positive finite"),
        ({"scale": "inf"}, "positive finite"),
        ({"width": "0"}, "width must be a positive"),
        ({"scale": "2", "seed": "x"}, "seed must be an integer"),
        ({"scale": "2", "colour": "red"}, "unknown field 'colour'"),
    ],
)
def test_bad_requests_are_400_with_a_message(client, tmp_path, fields, message):
    src = _png(tmp_path / "t.png", 8, 8)
    with src.open("rb") as f:
        r = client.post("/api/jobs", files={"file": ("t.png", f)}, data=fields)
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]
    assert list((tmp_path / "jobs").iterdir()) == []


def test_no_file_and_unknown_jobs(client):
    r = client.post("/api/jobs", data={"scale": "2"})
    assert r.status_code == 400 and "no image" in r.json()["error"]
    for method in ("get", "delete"):
        r = getattr(client, method)("/api/jobs/0123")
        assert r.status_code == 404 and "no job" in r.json()["error"]
    assert client.get("/api/jobs/0123/result").status_code == 404


def test_models_list_each_tasks_models_with_descriptions(client):
    models = client.get("/api/models").json()
    assert set(models) == {"upscale", "enhance", "blind"}
    assert models["upscale"][0]["name"] == "liif" and models["upscale"][0]["default"]
    assert "bicubic" in [m["name"] for m in models["upscale"]]
    assert "bicubic" not in [m["name"] for m in models["blind"]]
    assert models["enhance"][0]["name"] == "deeplpf-retouch"
    assert all(m["description"] for task in models.values() for m in task)


def test_finished_jobs_expire(client, tmp_path):
    src = _png(tmp_path / "t.png", 8, 8)
    job = _submit(client, src, model="bicubic", scale=2)
    assert _wait(client, job)["status"] == "done"
    jobs = client.app.state.jobs
    jobs.expire(now=time.monotonic() + jobs.ttl + 1)
    assert not (tmp_path / "jobs" / job).exists()
    assert client.get(f"/api/jobs/{job}").status_code == 404


def test_the_page_is_served_with_nothing_from_elsewhere(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for asset, kind in (("/static/app.js", "javascript"), ("/static/style.css", "text/css")):
        r = client.get(asset)
        assert r.status_code == 200 and kind in r.headers["content-type"]
        assert asset in page.text
    for text in (page.text, client.get("/static/app.js").text, client.get("/static/style.css").text):
        assert "http://" not in text and "https://" not in text and "//cdn" not in text
    assert client.get("/static/../app.py").status_code == 404
