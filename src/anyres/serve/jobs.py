"""The job queue behind ``anyres serve``: one worker thread runs one job at a time.

A job is the ``anyres`` command itself (``upscale`` or ``enhance``) run in a child process on the uploaded
file, so its result is the file the command writes for the same arguments, byte for byte, and a bad image
fails with the command's own one-line error. The child prints its progress lines (``ANYRES_PROGRESS_SECONDS``,
off a terminal) on stderr; the worker reads the percentage from them. Cancelling a running job ends the
child process, which frees the worker at once. Each job owns one temporary folder (the upload and the
result), removed when the result is downloaded, when the job is cancelled or fails, or when it expires.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Job", "JobQueue", "STATUSES"]

STATUSES = ("queued", "running", "done", "failed", "cancelled")
# A progress line of anyres.progress.Progress off a terminal: "rendering: 19.2k/102.4k px (19%), ...".
_PROGRESS = re.compile(r"^(?P<label>[^:]+): \S+/\S+ .*?\((?P<pct>\d+)%\)")
_ERROR = "anyres: error: "


@dataclass
class Job:
    """One request: ``args`` are the command's arguments after its input (``["--scale", "2", ...]``)."""

    id: str
    command: str  # "upscale" or "enhance"
    args: list[str]
    folder: Path
    input: Path
    name: str  # the client's file name, sanitized (shown in messages and the download name)
    record: dict[str, Any]
    status: str = "queued"
    progress: float = 0.0
    error: str | None = None
    result: Path | None = None
    result_suffix: str = ""  # the result's extension, kept after its file is removed
    created: float = field(default_factory=time.monotonic)
    finished: float | None = None
    cancel: threading.Event = field(default_factory=threading.Event)

    def view(self) -> dict[str, Any]:
        return {"status": self.status, "progress": round(self.progress, 4), "error": self.error}


class JobQueue:
    """Jobs by id, run in order by one worker thread; finished jobs expire ``ttl`` seconds after they end.

    ``threads``: ``--threads`` of each child (None: torch's default). ``python``: the interpreter of the
    children. ``poll``: seconds between checks of a running child (cancellation, progress).
    """

    def __init__(
        self,
        root: Path,
        *,
        threads: int | None = None,
        ttl: float = 3600.0,
        python: str = sys.executable,
        poll: float = 0.05,
        progress_seconds: float = 0.5,
    ):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.threads, self.ttl, self.python, self.poll = threads, ttl, python, poll
        self.progress_seconds = progress_seconds
        self.jobs: dict[str, Job] = {}
        self.lock = threading.Lock()
        self.pending: queue.Queue[str | None] = queue.Queue()
        self.worker: threading.Thread | None = None
        self.stopping = threading.Event()

    # -- the client's side -------------------------------------------------------------------------------

    def new_folder(self) -> tuple[str, Path]:
        job_id = uuid.uuid4().hex
        folder = self.root / job_id
        folder.mkdir(parents=True)
        return job_id, folder

    def submit(self, job: Job) -> None:
        with self.lock:
            self.jobs[job.id] = job
        self.start()
        self.pending.put(job.id)

    def get(self, job_id: str) -> Job | None:
        with self.lock:
            return self.jobs.get(job_id)

    def cancel(self, job_id: str) -> Job | None:
        """Cancel a queued or running job (a finished one is left as it is)."""
        with self.lock:
            job = self.jobs.get(job_id)
            if job is None:
                return None
            job.cancel.set()
            if job.status == "queued":
                self._finish(job, "cancelled")
        return job

    def discard(self, job: Job) -> None:
        """Remove a job's files (its status stays readable until it expires)."""
        with self.lock:
            job.result = None
        shutil.rmtree(job.folder, ignore_errors=True)

    # -- the worker --------------------------------------------------------------------------------------

    def start(self) -> None:
        with self.lock:
            if self.worker is None or not self.worker.is_alive():
                self.stopping.clear()
                self.worker = threading.Thread(target=self._work, name="anyres-serve-worker", daemon=True)
                self.worker.start()

    def stop(self) -> None:
        """Stop the worker (a running job is cancelled) and remove every job's files."""
        self.stopping.set()
        with self.lock:
            for job in self.jobs.values():
                job.cancel.set()
        self.pending.put(None)
        if self.worker is not None:
            self.worker.join(timeout=30)
        shutil.rmtree(self.root, ignore_errors=True)

    def expire(self, now: float | None = None) -> None:
        """Forget jobs that ended more than ``ttl`` seconds ago, and remove their files."""
        now = time.monotonic() if now is None else now
        with self.lock:
            old = [j for j in self.jobs.values() if j.finished is not None and now - j.finished > self.ttl]
            for job in old:
                del self.jobs[job.id]
        for job in old:
            shutil.rmtree(job.folder, ignore_errors=True)

    def _work(self) -> None:
        while not self.stopping.is_set():
            try:
                job_id = self.pending.get(timeout=1.0)
            except queue.Empty:
                self.expire()
                continue
            if job_id is None:
                break
            job = self.get(job_id)
            if job is None or job.status != "queued":
                continue
            try:
                self._run(job)
            except Exception as err:  # the worker survives whatever one job does
                with self.lock:
                    job.error = f"{type(err).__name__}: {err}"
                    self._finish(job, "failed")
            self.expire()

    def _finish(self, job: Job, status: str) -> None:
        """Under the lock: the job's final status; a job without a result loses its files now."""
        job.status = status
        job.finished = time.monotonic()
        if status == "done":
            job.progress = 1.0
        else:
            job.result = None
            shutil.rmtree(job.folder, ignore_errors=True)

    def command_line(self, job: Job, out_dir: Path) -> list[str]:
        threads = [] if self.threads is None else ["--threads", str(self.threads)]
        return (
            [self.python, "-m", "anyres.cli", job.command, str(job.input), "--out-dir", str(out_dir)]
            + job.args
            + threads
        )

    def _run(self, job: Job) -> None:
        with self.lock:  # a job cancelled while queued has lost its folder: it never starts
            if job.status != "queued" or job.cancel.is_set():
                return
            job.status = "running"
        out_dir = job.folder / "out"
        out_dir.mkdir()
        env = {**os.environ, "ANYRES_PROGRESS_SECONDS": str(self.progress_seconds), "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(
            self.command_line(job, out_dir),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            env=env,
            cwd=job.folder,
        )
        lines: list[str] = []
        reader = threading.Thread(target=self._read, args=(proc, job, lines), daemon=True)
        reader.start()
        while True:
            try:
                proc.wait(timeout=self.poll)
                break
            except subprocess.TimeoutExpired:
                if job.cancel.is_set():
                    _end(proc)
                    break
        reader.join(timeout=5)
        with self.lock:
            if job.cancel.is_set():
                self._finish(job, "cancelled")
                return
            outputs = sorted(p for p in out_dir.iterdir() if p.is_file())
            if proc.returncode == 0 and len(outputs) == 1:
                job.result, job.result_suffix = outputs[0], outputs[0].suffix
                self._finish(job, "done")
                return
            job.error = self._message(job, lines, proc.returncode)
            self._finish(job, "failed")

    def _read(self, proc: subprocess.Popen, job: Job, lines: list[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            line = line.rstrip("\n")
            lines.append(line)
            match = _PROGRESS.match(line)
            if match and match["label"] != "images":
                job.progress = max(0.0, min(0.99, int(match["pct"]) / 100))

    def _message(self, job: Job, lines: list[str], code: int | None) -> str:
        """The command's one-line error, with the upload's temporary path replaced by the client's file name."""
        errors = [line for line in lines if line.startswith(_ERROR)]
        if errors:
            text = errors[-1]
        else:
            rest = [line for line in lines if line.strip() and _PROGRESS.match(line) is None]
            text = rest[-1] if rest else f"anyres: error: the {job.command} command ended with status {code}"
        for path in (str(job.input), str(job.folder)):
            text = text.replace(path, job.name)
        return text


def _end(proc: subprocess.Popen, grace: float = 5.0) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
