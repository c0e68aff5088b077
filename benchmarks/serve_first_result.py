"""``anyres serve`` from a cold start to the first downloaded result, against ``anyres upscale``; and cancellation.

Usage:
  python benchmarks/serve_first_result.py [--side 512] [--scale 4] [--threads 1]
      [--json benchmarks/results/serve_first_result.json]

Writes a smooth synthetic ``--side`` x ``--side`` RGB PNG (seed 0: a few low-frequency waves per channel plus
gradients, like a defocused photo) into a temporary folder, then:

1. starts ``anyres serve --port P --threads 1`` (a free port) as a subprocess and polls ``GET /api/models``
   until it answers (time to ready);
2. posts the image with ``task=upscale``, ``scale=4`` and the default model, polls ``GET /api/jobs/{id}``
   every 0.1 s until it is done, downloads ``GET /api/jobs/{id}/result`` and checks its size (time to the
   first result, counted from the start of ``anyres serve``);
3. submits the same image again, waits until its status is ``running``, sends ``DELETE /api/jobs/{id}`` and
   times how long until it reads ``cancelled``, then at once submits a small job (a 32x32 image, bicubic x2)
   and times how long until that one is ``done`` (the cancelled job freed the worker);
4. stops the server and runs ``anyres upscale`` on the same image with the same arguments (``--model``,
   ``--scale``, ``--seed 0``, ``--threads``) as a reference, timing the whole process, and compares its output
   file with the server's result byte for byte.

Prints a Markdown table and writes the record (with the exact commands) to ``--json``. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "serve_first_result.json"
POLL = 0.1


def smooth_image(side: int, seed: int = 0) -> np.ndarray:
    """A smooth 8-bit RGB image: low-frequency waves per channel plus gradients (no noise)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:side, 0:side].astype(np.float64) / side
    out = np.empty((side, side, 3))
    for c in range(3):
        v = 0.35 * x + 0.25 * y * (c + 1) / 3
        for _ in range(5):
            fx, fy = rng.uniform(0.5, 4.0, 2)
            phase = rng.uniform(0, 2 * np.pi)
            v += rng.uniform(0.05, 0.2) * np.sin(2 * np.pi * (fx * x + fy * y) + phase)
        out[..., c] = v
    out -= out.min()
    out /= out.max()
    return np.round(out * 255).astype(np.uint8)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def anyres_command() -> list[str]:
    """The ``anyres`` entry point of this environment (or ``python -m anyres.cli`` without one)."""
    exe = shutil.which("anyres", path=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    return [exe] if exe else [sys.executable, "-m", "anyres.cli"]


class Client:
    def __init__(self, base: str):
        self.base = base

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> bytes:
        req = urllib.request.Request(self.base + path, data=body, method=method, headers=headers or {})
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.read()

    def json(self, method: str, path: str, **kw) -> dict:
        return json.loads(self.request(method, path, **kw))

    def submit(self, png: bytes, fields: dict[str, str]) -> str:
        boundary = uuid.uuid4().hex
        parts = []
        for key, value in fields.items():
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode())
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="input.png"\r\n'
            f"Content-Type: image/png\r\n\r\n".encode()
            + png
            + b"\r\n"
        )
        parts.append(f"--{boundary}--\r\n".encode())
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        return self.json("POST", "/api/jobs", body=b"".join(parts), headers=headers)["id"]

    def status(self, job_id: str) -> dict:
        return self.json("GET", f"/api/jobs/{job_id}")

    def wait(self, job_id: str, statuses: tuple[str, ...], timeout: float) -> tuple[dict, float]:
        """Poll every POLL seconds until the job's status is one of ``statuses``; (its view, monotonic time)."""
        end = time.monotonic() + timeout
        while True:
            view = self.status(job_id)
            now = time.monotonic()
            if view["status"] in statuses:
                return view, now
            if view["status"] in ("failed", "cancelled", "done"):
                raise RuntimeError(f"job {job_id} ended {view['status']}: {view.get('error')}")
            if now > end:
                raise TimeoutError(f"job {job_id} still {view['status']} after {timeout:g} s")
            time.sleep(POLL)


def png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def measure(side: int, scale: int, threads: int, timeout: float) -> dict:
    work = Path(tempfile.mkdtemp(prefix="serve_first_result-"))
    try:
        src = work / "input.png"
        png = png_bytes(smooth_image(side))
        src.write_bytes(png)
        small = png_bytes(smooth_image(32, seed=1))
        anyres = anyres_command()
        port = free_port()
        serve_cmd = [*anyres, "serve", "--port", str(port), "--threads", str(threads)]
        client = Client(f"http://127.0.0.1:{port}")
        rec: dict = {"serve_command": " ".join(["anyres", *serve_cmd[len(anyres) :]])}

        t0 = time.monotonic()
        server = subprocess.Popen(serve_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            while True:
                try:
                    models = client.json("GET", "/api/models")
                    break
                except (urllib.error.URLError, ConnectionError, OSError):
                    if server.poll() is not None:
                        raise RuntimeError(f"anyres serve exited: {server.stderr.read()}") from None
                    if time.monotonic() - t0 > 120:
                        raise TimeoutError("anyres serve did not answer in 120 s") from None
                    time.sleep(0.05)
            t_ready = time.monotonic()
            model = next(m["name"] for m in models["upscale"] if m["default"])
            fields = {"task": "upscale", "scale": str(scale)}  # no model: the default one

            job = client.submit(png, fields)
            t_submitted = time.monotonic()
            _, t_done = client.wait(job, ("done",), timeout)
            record = client.json("GET", f"/api/jobs/{job}/record")
            result = client.request("GET", f"/api/jobs/{job}/result")
            t_result = time.monotonic()
            size = Image.open(io.BytesIO(result)).size
            assert size == (side * scale, side * scale), size

            # Cancellation: a running job is stopped and the worker takes the next job at once.
            job2 = client.submit(png, fields)
            t_submitted2 = time.monotonic()
            _, t_running = client.wait(job2, ("running",), 60)
            t_delete = time.monotonic()
            deleted = client.json("DELETE", f"/api/jobs/{job2}")
            t_delete_answered = time.monotonic()
            if deleted["status"] == "cancelled":  # the DELETE answers once the running job has ended
                t_cancelled = t_delete_answered
            else:
                _, t_cancelled = client.wait(job2, ("cancelled",), 30)
            job3 = client.submit(small, {"task": "upscale", "model": "bicubic", "scale": "2"})
            t_small_submitted = time.monotonic()
            _, t_small_done = client.wait(job3, ("done",), 60)
            small_size = Image.open(io.BytesIO(client.request("GET", f"/api/jobs/{job3}/result"))).size
            assert small_size == (64, 64), small_size
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()

        # The reference: the command line on the same image with the same arguments, a fresh process.
        out = work / "cli"
        cli_cmd = [*anyres, "upscale", str(src), "--out-dir", str(out), "--model", model]
        cli_cmd += ["--scale", str(scale), "--seed", "0", "--threads", str(threads)]
        c0 = time.monotonic()
        subprocess.run(cli_cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cli_seconds = time.monotonic() - c0
        cli_bytes = (out / "input.png").read_bytes()

        rec.update(
            {
                "cli_command": " ".join(
                    ["anyres", "upscale", "input.png", "--out-dir", "cli", *cli_cmd[len(anyres) + 4 :]]
                ),
                "server_job_command": record.get("command"),
                "input": f"{side}x{side} smooth synthetic RGB PNG, seed 0",
                "output": f"{size[0]}x{size[1]}",
                "model": model,
                "ready_s": round(t_ready - t0, 3),
                "submit_s": round(t_submitted - t_ready, 3),
                "job_done_s": round(t_done - t_submitted, 3),
                "job_seconds_in_record": record.get("seconds"),
                "download_s": round(t_result - t_done, 3),
                "first_result_s": round(t_result - t0, 3),
                "cli_s": round(cli_seconds, 3),
                "identical": result == cli_bytes,
                "result_bytes": len(result),
                "cancel": {
                    "running_after_submit_s": round(t_running - t_submitted2, 3),
                    "delete_answered_s": round(t_delete_answered - t_delete, 3),
                    "cancelled_s": round(t_cancelled - t_delete, 3),
                    "small_job_done_after_delete_s": round(t_small_done - t_delete, 3),
                    "small_job_done_after_submit_s": round(t_small_done - t_small_submitted, 3),
                    "small_job": "32x32 PNG, task=upscale, model=bicubic, scale=2",
                },
            }
        )
        return rec
    finally:
        shutil.rmtree(work, ignore_errors=True)


def table(r: dict) -> str:
    c = r["cancel"]
    rows = [
        ("`anyres serve` started -> `GET /api/models` answers", r["ready_s"]),
        ("upload posted -> job `done` (polled every 0.1 s)", r["job_done_s"]),
        ("job `done` -> result downloaded", r["download_s"]),
        (f"**`anyres serve` started -> {r['output']} result downloaded**", r["first_result_s"]),
        ("reference: `anyres upscale` (same image and arguments, a fresh process)", r["cli_s"]),
        ("cancel: `DELETE` of a running job -> status `cancelled`", c["cancelled_s"]),
        ("cancel: `DELETE` -> next job (32x32 bicubic x2) `done`", c["small_job_done_after_delete_s"]),
    ]
    lines = ["| step | seconds |", "|---|---:|"]
    lines += [f"| {name} | {value:.2f} |" for name, value in rows]
    lines.append(f"| result byte-identical to `anyres upscale`'s file | {'yes' if r['identical'] else 'NO'} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", type=int, default=512)
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds the first job may take")
    ap.add_argument("--json", type=Path, default=RESULTS)
    opts = ap.parse_args()
    rec = measure(opts.side, opts.scale, opts.threads, opts.timeout)
    rec["command"] = "python benchmarks/serve_first_result.py " + " ".join(sys.argv[1:])
    rec["command"] = rec["command"].strip()
    rec["machine"] = f"{platform.machine()}, {os.cpu_count()} cores (shared with a training run)"
    rec["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(table(rec))
    print(f"\nserver job: {rec['server_job_command']}\nreference:  {rec['cli_command']}")
    opts.json.parent.mkdir(parents=True, exist_ok=True)
    opts.json.write_text(json.dumps(rec, indent=2) + "\n")
    print(f"wrote {opts.json}")


if __name__ == "__main__":
    main()
