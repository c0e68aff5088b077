"""The web app of ``anyres serve``: a JSON API over the job queue, and one page that uses it.

API (every error is ``{"error": "one line"}`` with a 4xx status):

- ``POST /api/jobs`` (multipart): ``file``, ``task`` (upscale, enhance, blind), ``model`` (optional), ``scale``
  or ``width`` and/or ``height`` (upscale, blind), ``seed`` -> ``{"id": ...}``
- ``GET /api/jobs/{id}`` -> ``{"status": queued|running|done|failed|cancelled, "progress": 0..1, "error": ...}``
- ``GET /api/jobs/{id}/result`` -> the output file (once: the job's files are removed after it is sent)
- ``GET /api/jobs/{id}/record`` -> what was done: the request, the equivalent command line, timings
- ``DELETE /api/jobs/{id}`` cancels a queued or running job
- ``GET /api/models`` -> the models of each task with their one-line descriptions
"""

from __future__ import annotations

import math
import mimetypes
import re
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.background import BackgroundTask
from starlette.datastructures import UploadFile
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from anyres.serve.jobs import Job, JobQueue

__all__ = ["create_app", "DEFAULT_MAX_UPLOAD_MB", "TASKS", "plan", "safe_name"]

STATIC = Path(__file__).resolve().parent / "static"
DEFAULT_MAX_UPLOAD_MB = 50.0
TASKS = ("upscale", "enhance", "blind")
DEFAULT_UPSCALER = "liif"  # what `anyres upscale` runs without --model
_FIELDS = ("task", "model", "scale", "width", "height", "seed")


class BadRequest(ValueError):
    """A request the API refuses with 400 and this message."""


def _models() -> dict[str, Any]:
    from anyres.enhancement.api import DEFAULT_ENHANCER
    from anyres.registry import ENHANCERS, UPSCALERS

    def listed(registry: Any, default: str, learned_only: bool = False) -> list[dict[str, Any]]:
        out = []
        for e in registry.values():
            if not e.available or (learned_only and e.role == "baseline"):
                continue
            out.append({"name": e.name, "description": e.description, "default": e.name == default})
        return sorted(out, key=lambda m: (not m["default"], m["name"]))

    return {
        "upscale": listed(UPSCALERS, DEFAULT_UPSCALER),
        "blind": listed(UPSCALERS, DEFAULT_UPSCALER, learned_only=True),
        "enhance": listed(ENHANCERS, DEFAULT_ENHANCER),
    }


def safe_name(filename: str | None) -> tuple[str, str]:
    """The client's file name reduced to a plain ``stem.ext`` (letters, digits, ``_``, ``-``) and its suffix.

    Folders, ``..``, drive letters and odd characters are dropped: the name only labels the job; the upload is
    stored under a name of the server's own.
    """
    base = re.split(r"[\\/:]", filename or "")[-1]
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = ext, ""
    suffix = f".{ext.lower()}" if re.fullmatch(r"[A-Za-z0-9]{1,5}", ext) else ""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_")[:64] or "image"
    return stem + suffix, suffix


def _number(form: dict[str, str], key: str, kind: type) -> Any:
    text = form.get(key, "").strip()
    if not text:
        return None
    try:
        value = kind(text)
    except ValueError:
        raise BadRequest(f"{key} must be {'an integer' if kind is int else 'a number'}, got {text!r}") from None
    return value


def plan(form: dict[str, str]) -> tuple[str, list[str], dict[str, Any]]:
    """The form's fields -> (command, its arguments after the input, the record); BadRequest if they are wrong."""
    models = _models()
    task = form.get("task", "upscale").strip() or "upscale"
    if task not in TASKS:
        raise BadRequest(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    names = [m["name"] for m in models[task]]
    model = form.get("model", "").strip() or next(m["name"] for m in models[task] if m["default"])
    if model not in names:
        raise BadRequest(f"unknown model {model!r} for {task}; expected one of {', '.join(names)}")
    scale = _number(form, "scale", float)
    width, height = _number(form, "width", int), _number(form, "height", int)
    seed = _number(form, "seed", int)
    record: dict[str, Any] = {"task": task, "model": model}
    if task == "enhance":
        if scale is not None or width is not None or height is not None:
            raise BadRequest("enhance works at the image's own size: scale, width and height do not apply")
        if seed is not None:
            raise BadRequest("enhance is deterministic: seed does not apply")
        return "enhance", ["--model", model], record
    if (scale is None) == (width is None and height is None):
        raise BadRequest("give either scale, or width and/or height")
    args = ["--model", model]
    if scale is not None:
        if not (math.isfinite(scale) and scale > 0):
            raise BadRequest(f"scale must be a positive finite number, got {scale:g}")
        text = repr(scale)  # the shortest text that reads back as the same float
        args += ["--scale", text.removesuffix(".0")]
        record["scale"] = scale
    else:
        for key, value in (("width", width), ("height", height)):
            if value is not None and value < 1:
                raise BadRequest(f"{key} must be a positive number of pixels, got {value}")
        if width is not None and height is not None:
            args += ["--size", f"{width}x{height}"]
        elif width is not None:
            args += ["--width", str(width)]
        else:
            args += ["--height", str(height)]
        record.update({k: v for k, v in (("width", width), ("height", height)) if v is not None})
    record["seed"] = 0 if seed is None else seed
    args += ["--seed", str(record["seed"])]
    if task == "blind":
        args.append("--blind")
    return "upscale", args, record


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class _UploadLimit:
    """Refuse a ``POST /api/jobs`` body over ``limit`` bytes with 413: at once by its Content-Length, or as
    soon as a streamed body passes the limit (nothing more is read)."""

    def __init__(self, app: ASGIApp, limit_mb: float):
        self.app, self.limit_mb, self.limit = app, limit_mb, int(limit_mb * 2**20)

    def message(self, size: int | None = None) -> str:
        got = "" if size is None else f" ({size / 2**20:.3g} MB)"
        return f"upload too large{got}: the limit is {self.limit_mb:g} MB (anyres serve --max-upload-mb)"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await _error(413, self.message(int(length)))(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise HTTPException(413, self.message())
            return message

        await self.app(scope, counted, send)


def create_app(
    *,
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
    threads: int | None = None,
    ttl: float = 3600.0,
    root: Path | None = None,
) -> FastAPI:
    """The app: ``max_upload_mb`` (413 above it), ``threads`` (torch threads of each job), ``ttl`` (seconds a
    finished job's result is kept), ``root`` (the folder of the jobs' temporary files; default: a new one)."""
    work = Path(tempfile.mkdtemp(prefix="anyres-serve-")) if root is None else root
    jobs = JobQueue(work, threads=threads, ttl=ttl)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        jobs.stop()

    app = FastAPI(title="anyres", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.jobs = jobs
    app.add_middleware(_UploadLimit, limit_mb=max_upload_mb)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, err: HTTPException) -> JSONResponse:
        return _error(err.status_code, str(err.detail))

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/api/models")
    def models() -> dict[str, Any]:
        return _models()

    @app.post("/api/jobs")
    async def submit(request: Request) -> Response:
        try:
            form = await request.form(max_files=1, max_fields=len(_FIELDS) + 1)
        except HTTPException:
            raise
        except Exception as err:
            return _error(400, f"could not read the form: {err}")
        try:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise BadRequest("no image: send it as the multipart field 'file'")
            unknown = sorted(set(form.keys()) - {"file", *_FIELDS})
            if unknown:
                raise BadRequest(f"unknown field {unknown[0]!r}; expected file, {', '.join(_FIELDS)}")
            fields = {k: v for k, v in form.items() if isinstance(v, str)}
            command, args, record = plan(fields)
        except BadRequest as err:
            await form.close()
            return _error(400, str(err))
        name, suffix = safe_name(upload.filename)
        job_id, folder = jobs.new_folder()
        (folder / "in").mkdir()
        path = folder / "in" / f"input{suffix}"
        with path.open("wb") as f:
            while chunk := await upload.read(1 << 20):
                f.write(chunk)
        await form.close()
        record = {**record, "input": name, "command": _command_line(command, name, args)}
        jobs.submit(Job(job_id, command, args, folder, path, name, record))
        return JSONResponse({"id": job_id})

    def find(job_id: str) -> Job:
        job = jobs.get(job_id)
        if job is None:
            raise HTTPException(404, f"no job {job_id!r} (unknown, or expired)")
        return job

    @app.get("/api/jobs/{job_id}")
    def status(job_id: str) -> dict[str, Any]:
        return find(job_id).view()

    @app.get("/api/jobs/{job_id}/record")
    def record(job_id: str) -> dict[str, Any]:
        job = find(job_id)
        seconds = None if job.finished is None else round(job.finished - job.created, 3)
        return {**job.record, **job.view(), "output": _download_name(job), "seconds": seconds}

    @app.get("/api/jobs/{job_id}/result")
    def result(job_id: str) -> Response:
        job = find(job_id)
        if job.status != "done":
            raise HTTPException(409, f"job {job_id} is {job.status}; its result is not ready")
        path = job.result
        if path is None or not path.exists():
            raise HTTPException(410, f"the result of job {job_id} was already downloaded")
        media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return FileResponse(
            path, media_type=media, filename=_download_name(job), background=BackgroundTask(jobs.discard, job)
        )

    @app.delete("/api/jobs/{job_id}")
    def cancel(job_id: str) -> dict[str, Any]:
        find(job_id)
        job = jobs.cancel(job_id)
        assert job is not None
        deadline = time.monotonic() + 10  # a running job ends within the worker's poll and the child's exit
        while job.status == "running" and time.monotonic() < deadline:
            time.sleep(0.02)
        return job.view()

    return app


def _download_name(job: Job) -> str | None:
    if job.status != "done":
        return None
    stem = job.name.rsplit(".", 1)[0] if "." in job.name else job.name
    ext = job.result_suffix or ".png"
    return f"{stem}{'_enhanced' if job.command == 'enhance' else '_anyres'}{ext}"


def _command_line(command: str, name: str, args: list[str]) -> str:
    return " ".join(["anyres", command, name, *args])
