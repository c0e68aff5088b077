"""Prove that a refactor changed no output: record every shipped model and pipeline at two commits, compare.

    python scripts/bit_identity.py --old 7f13263          # records OLD in a git worktree, then this tree
    python scripts/bit_identity.py --old 7f13263 --keep /tmp/bitid   # keep both recordings

Recording uses only the public surface that must not change: the Python entry points of the README
(``anyres.upscale/enhance/degrade_image/estimate_kernel/evaluate/read_image/write_image``,
``anyres.degrade.get_pipeline``) and the ``anyres`` CLI (upscale, enhance, degrade, evaluate, compare,
estimate-kernel, hllhgan, train, models), on small images generated from a fixed seed.

Float16 weights: the package stores its weights as float16 and the loader upcasts them. So that the two
recordings are comparable, the recorder rounds every float tensor it reads from a ``.safetensors`` file
through float16 (a no-op on float16 files). Training runs start from fresh weights and are compared exactly.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Keys whose values are wall-clock measurements, not outputs.
TIMING_KEYS = {"seconds", "wall_time_hours", "elapsed", "time", "date", "it_per_s"}


# ------------------------------------------------------------------------------------------------------
# Recording (runs inside the tree being recorded)


def _round_weights_through_fp16() -> None:
    import safetensors.torch as st
    import torch

    def rounded(state):
        return {
            k: (v.half().float() if v.is_floating_point() and v.dtype != torch.float16 else v) for k, v in state.items()
        }

    load_file, load = st.load_file, st.load
    st.load_file = lambda *a, **k: rounded(load_file(*a, **k))
    st.load = lambda *a, **k: rounded(load(*a, **k))


def _images(work: Path) -> dict[str, Path]:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    work.mkdir(parents=True, exist_ok=True)
    smooth = rng.random((3, 14, 13))
    big = np.kron(smooth, np.ones((1, 8, 8)))[:, :104, :96]
    rgb = np.clip(big.transpose(1, 2, 0) + 0.05 * rng.standard_normal((104, 96, 3)), 0, 1)
    paths = {}
    paths["rgb"] = work / "rgb.png"
    Image.fromarray((rgb * 255).round().astype(np.uint8)).save(paths["rgb"])
    paths["small"] = work / "small.png"
    Image.fromarray((rgb[:24, :20] * 255).round().astype(np.uint8)).save(paths["small"])
    rgba = np.concatenate([rgb[:20, :18], rng.random((20, 18, 1))], axis=2)
    paths["rgba"] = work / "rgba.png"
    Image.fromarray((rgba * 255).round().astype(np.uint8), "RGBA").save(paths["rgba"])
    paths["gray16"] = work / "gray16.png"
    import png

    gray = (rgb[:22, :26].mean(axis=2) * 65535).round().astype(np.uint16)
    with open(paths["gray16"], "wb") as f:
        png.Writer(width=26, height=22, greyscale=True, bitdepth=16).write(f, gray.tolist())
    folder = work / "hr"
    folder.mkdir(exist_ok=True)
    for i in range(3):
        crop = rgb[i * 8 : i * 8 + 76, i * 5 : i * 5 + 72]
        Image.fromarray((crop * 255).round().astype(np.uint8)).save(folder / f"im{i}.png")
    paths["hr"] = folder
    lrdir = work / "lr"
    lrdir.mkdir(exist_ok=True)
    for i in range(3):
        crop = rgb[i * 4 : i * 4 + 72, i * 3 : i * 3 + 70]
        Image.fromarray((crop * 255).round().astype(np.uint8)).save(lrdir / f"lr{i}.png")
    paths["lr"] = lrdir
    return paths


def record(out: Path, tree: Path) -> None:
    import numpy as np
    import torch

    _round_weights_through_fp16()
    torch.set_num_threads(1)
    root = tree
    from click.testing import CliRunner

    import anyres
    from anyres.cli import main

    out.mkdir(parents=True, exist_ok=True)
    (out / "tree.txt").write_text(str(root))  # each tree reads its own checkpoints/: paths differ by this
    work = out / "_work"
    paths = _images(work)
    log: dict[str, str] = {}

    def save(name: str, tensor) -> None:
        np.save(out / f"{name}.npy", tensor.detach().cpu().float().numpy())

    def cli(name: str, *args: str) -> None:
        result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=True)
        text = (
            result.output
            if not result.exception or isinstance(result.exception, SystemExit)
            else f"{result.output}\nEXCEPTION {type(result.exception).__name__}: {result.exception}"
        )
        log[name] = f"rc={result.exit_code}\n{text}"

    def attempt(name: str, fn) -> None:
        try:
            fn()
        except Exception as err:  # a failure is an output too
            log[name] = f"EXCEPTION {type(err).__name__}: {err}"

    lr, _ = anyres.read_image(paths["small"])
    sr_models = ["bicubic", "liif", "liif-real", "diinn", "liifusion-s1", "liifusion"]
    for model in sr_models:
        for mode in ("fast", "exact"):
            attempt(
                f"upscale_{model}_{mode}",
                lambda: save(f"upscale_{model}_{mode}", anyres.upscale(lr, 2.5, model=model, mode=mode)),
            )
        attempt(
            f"upscale_{model}_size",
            lambda: save(f"upscale_{model}_size", anyres.upscale(lr, size=(37, 50), model=model, tile=8)),
        )
    attempt(
        "upscale_liifusion_seed3",
        lambda: save("upscale_liifusion_seed3", anyres.upscale(lr, 3, model="liifusion", seed=3)),
    )

    img, _ = anyres.read_image(paths["rgb"])
    enhancers = [
        "deeplpf-retouch",
        "deeplpf-lowlight",
        str(root / "checkpoints/unet-lowlight"),
        str(root / "checkpoints/unet-retouch"),
        str(root / "checkpoints/deeplpf-retouch-default-init"),
    ]
    for i, model in enumerate(enhancers):
        attempt(f"enhance_{i}", lambda: save(f"enhance_{i}", anyres.enhance(img, model)))

    for pipeline in ("classical", "bsrgan", "realesrgan"):
        for scale in (2.0, 3.5):

            def run_pipe():
                lr_img, rec = anyres.degrade_image(img, pipeline, scale, seed=7)
                save(f"degrade_{pipeline}_{scale}", lr_img)
                (out / f"degrade_{pipeline}_{scale}.json").write_text(json.dumps(rec, sort_keys=True))

            attempt(f"degrade_{pipeline}_{scale}", run_pipe)

        def batched():
            from anyres.degrade import get_pipeline

            pipe = get_pipeline(pipeline)
            hr = torch.rand(4, 3, 40, 40, generator=torch.Generator().manual_seed(1))
            records = pipe.sample(4, torch.Generator().manual_seed(0), scale=2.5, hr_size=(40, 40))
            save(f"pipe_{pipeline}", pipe.apply(hr, records))

        attempt(f"pipe_{pipeline}", batched)

    attempt("kernel_x2", lambda: save("kernel_x2", anyres.estimate_kernel(paths["rgb"], 2, iters=30, seed=1)))
    attempt("kernel_x4", lambda: save("kernel_x4", anyres.estimate_kernel(paths["rgb"], 4, iters=30, seed=2)))

    def api_eval():
        report = anyres.evaluate("liif", paths["hr"], [2, 3.3])
        (out / "api_evaluate.json").write_text(json.dumps(report, sort_keys=True))

    attempt("api_evaluate", api_eval)

    c = out / "cli"
    c.mkdir(exist_ok=True)
    cli("models", "models")
    cli("up_rgba", "upscale", paths["rgba"], "--scale", "2.2", "-o", c / "up_rgba.png")
    cli("up_gray16", "upscale", paths["gray16"], "--width", "40", "--model", "diinn", "-o", c / "up_gray16.png")
    cli("up_tiff", "upscale", paths["small"], "--size", "30x41", "--mode", "exact", "-o", c / "up.tif")
    cli("up_dir", "upscale", paths["hr"], "--scale", "1.5", "--model", "bicubic", "--out-dir", c / "updir")
    cli("up_blind", "upscale", paths["rgb"], "--scale", "2", "--blind", "--blind-iters", "20", "-o", c / "up_blind.png")
    cli("en_explain", "enhance", paths["rgb"], "--explain", "-o", c / "en.png")
    cli(
        "en_working",
        "enhance",
        paths["rgb"],
        "--working-size",
        "48",
        "--model",
        root / "checkpoints/unet-lowlight",
        "--resampler",
        "lmar",
        "--resampler-model",
        root / "checkpoints/lmar-lowlight",
        "-o",
        c / "en_lmar.png",
    )
    cli("en_bicubic", "enhance", paths["rgba"], "--working-size", "12", "-o", c / "en_rgba.png")
    cli(
        "degrade",
        "degrade",
        paths["hr"],
        "--pipeline",
        "realesrgan",
        "--scale",
        "3",
        "--seed",
        "4",
        "--out-dir",
        c / "deg",
        "--params-out",
        c / "deg_params.json",
    )
    cli("degrade_replay", "degrade", paths["hr"], "--replay", c / "deg_params.json", "--out-dir", c / "deg_again")
    cli("degrade_bsrgan", "degrade", paths["rgb"], "--pipeline", "bsrgan", "--scale", "2.5", "-o", c / "deg_b.png")
    cli("eval_bicubic", "evaluate", "--data", paths["hr"], "--scales", "2,3", "--json", c / "eval_bicubic.json")
    cli(
        "eval_liif",
        "evaluate",
        "--model",
        "liif",
        "--data",
        paths["hr"],
        "--scales",
        "2,2.5",
        "--protocol",
        "div2k",
        "--metrics",
        "psnr,ssim,lpips",
        "--json",
        c / "eval_liif.json",
    )
    cli(
        "eval_degr",
        "evaluate",
        "--model",
        "liif-real",
        "--data",
        paths["hr"],
        "--scales",
        "2",
        "--degradation",
        "bsrgan",
        "--seed",
        "3",
        "--json",
        c / "eval_degr.json",
    )
    cli(
        "eval_task",
        "evaluate",
        "--task",
        "retouch",
        "--model",
        "deeplpf-retouch",
        "--data",
        paths["hr"],
        "--json",
        c / "eval_task.json",
    )
    cli(
        "eval_task_lmar",
        "evaluate",
        "--task",
        "lowlight",
        "--model",
        root / "checkpoints/unet-lowlight",
        "--data",
        paths["hr"],
        "--working-scale",
        "2",
        "--resampler",
        "lmar",
        "--resampler-model",
        root / "checkpoints/lmar-lowlight",
        "--json",
        c / "eval_task_lmar.json",
    )
    cli(
        "compare",
        "compare",
        paths["rgb"],
        "--as-hr",
        "--scale",
        "4",
        "--models",
        "bicubic,liif",
        "-o",
        c / "compare.png",
    )
    cli(
        "kernel",
        "estimate-kernel",
        paths["rgb"],
        "--scale",
        "2",
        "--iters",
        "25",
        "-o",
        c / "kernel.npy",
        "--png",
        c / "kernel.png",
        "--json",
        c / "kernel.json",
    )
    cli(
        "hllhgan",
        "hllhgan",
        "--hr",
        paths["hr"],
        "--lr",
        paths["lr"],
        "--out",
        c / "hllhgan",
        "--iters",
        "2",
        "--batch",
        "2",
        "--threads",
        "1",
    )
    cli(
        "degrade_hllhgan",
        "degrade",
        paths["rgb"],
        "--pipeline",
        "hllhgan",
        "--scale",
        "4",
        "--weights",
        c / "hllhgan" / "h2l",
        "-o",
        c / "deg_hllhgan.png",
    )

    runs = work / "runs"
    tiny_sr = [
        "--set",
        "iterations=2",
        "--set",
        "batch_size=2",
        "--set",
        "data.patch=16",
        "--set",
        "data.queries=64",
        "--set",
        f"data.train=[{paths['hr']}]",
        "--set",
        "val.data=null",
        "--set",
        "threads=1",
        "--set",
        "log_every=1",
    ]
    for cfg in ("liif-edsr-baseline", "diinn-edsr-baseline", "liifusion-s1-edsr-baseline", "liif-real"):
        cli(
            f"train_{cfg}",
            "train",
            root / "configs" / f"{cfg}.yaml",
            *tiny_sr,
            "--set",
            f"out_dir={runs / cfg}",
            "--set",
            "init=null",
        )
    for cfg in ("deeplpf-retouch", "unet-lowlight"):
        cli(
            f"train_{cfg}",
            "train",
            root / "configs" / f"{cfg}.yaml",
            "--set",
            "iterations=2",
            "--set",
            "batch_size=2",
            "--set",
            f"data.train=[{paths['hr']}]",
            "--set",
            "data.patch=32",
            "--set",
            "threads=1",
            "--set",
            f"out_dir={runs / cfg}",
        )
    cli(
        "train_lmar",
        "train",
        root / "configs" / "lmar-lowlight.yaml",
        "--set",
        "iterations=2",
        "--set",
        f"data.train=[{paths['hr']}]",
        "--set",
        "data.crop=64",
        "--set",
        "data.exclude=[]",
        "--set",
        f"enhancer={root / 'checkpoints/unet-lowlight'}",
        "--set",
        "threads=1",
        "--set",
        f"out_dir={runs / 'lmar'}",
    )
    for run in sorted(runs.glob("*")):
        for weights in sorted(run.rglob("*.safetensors")):
            from safetensors.torch import load_file

            state = load_file(str(weights))
            name = "train_" + str(weights.relative_to(runs)).replace("/", "_")
            np.savez(out / f"{name}.npz", **{k: v.float().numpy() for k, v in state.items() if v.is_floating_point()})
    (out / "log.json").write_text(json.dumps(log, indent=1, sort_keys=True))
    shutil.rmtree(work)


# ------------------------------------------------------------------------------------------------------
# Comparing two recordings


def _strip_timing(obj):
    if isinstance(obj, dict):
        return {k: _strip_timing(v) for k, v in obj.items() if k not in TIMING_KEYS}
    if isinstance(obj, list):
        return [_strip_timing(v) for v in obj]
    return obj


def _normalised_text(text: str, root: Path) -> str:
    """``text`` with the recorded tree's root and the recording folder replaced by fixed names (the tree
    first: a worktree beside the recording shares its prefix)."""
    tree = root / "tree.txt"
    if tree.is_file():
        text = text.replace(tree.read_text(), "TREE")
    return text.replace(str(root), "OUT")


def _normalised(path: Path, root: Path) -> str:
    return _normalised_text(path.read_text(), root)


def _same(a: Path, b: Path, roots: tuple[Path, Path]) -> str | None:
    import numpy as np

    if a.read_bytes() == b.read_bytes() or a.name == "tree.txt":
        return None
    if a.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(a), "pt") as fa, safe_open(str(b), "pt") as fb:
            if sorted(fa.keys()) != sorted(fb.keys()):
                return "tensor names differ"
            bad = [k for k in fa.keys() if not fa.get_tensor(k).equal(fb.get_tensor(k))]
            meta = [_strip_timing({k: _maybe_json(v) for k, v in (f.metadata() or {}).items()}) for f in (fa, fb)]
        return f"{len(bad)} tensors differ" if bad else (None if meta[0] == meta[1] else "metadata differs")
    if a.suffix == ".npy":
        x, y = np.load(a), np.load(b)
        return f"max |diff| {np.abs(x - y).max() if x.shape == y.shape else 'shape ' + str((x.shape, y.shape))}"
    if a.suffix == ".npz":
        x, y = np.load(a), np.load(b)
        if sorted(x.files) != sorted(y.files):
            return f"keys differ: {sorted(set(x.files) ^ set(y.files))[:5]}"
        bad = [k for k in x.files if not np.array_equal(x[k], y[k])]
        return f"{len(bad)} tensors differ, e.g. {bad[:3]}" if bad else None
    if a.suffix == ".json":
        try:
            ja = _strip_timing(json.loads(a.read_text() if a.name == "log.json" else _normalised(a, roots[0])))
            jb = _strip_timing(json.loads(b.read_text() if b.name == "log.json" else _normalised(b, roots[1])))
        except ValueError:
            return "differs (not JSON)"
        if a.name == "log.json":
            bad = [
                k for k in sorted(set(ja) | set(jb)) if _log_line(ja.get(k), roots[0]) != _log_line(jb.get(k), roots[1])
            ]
            return f"logs differ: {bad}" if bad else None
        return None if ja == jb else "JSON differs"
    if a.suffix in (".png", ".tif", ".jpg"):
        from PIL import Image

        x, y = np.asarray(Image.open(a)), np.asarray(Image.open(b))
        return None if x.shape == y.shape and np.array_equal(x, y) else "pixels differ"
    return "bytes differ"


def _maybe_json(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return text


def _log_line(text: str | None, root: Path) -> str | None:
    # Progress bars and timings are wall-clock; keep the exit code, messages and results.
    import re

    if text is None:
        return None
    text = _normalised_text(text, root)
    text = re.sub(r"\| [0-9.]+ \|$", "| - |", text, flags=re.M)  # the tables' "seconds" column
    text = re.sub(r"[0-9.]+ s\b", "T s", text)
    lines = [ln.split("\r")[-1].strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln]  # a cleared progress bar leaves spaces as wide as it was
    keep = [ln for ln in lines if not any(w in ln for w in ("it/s", "s/it", "ETA", "eta", " sec"))]
    return "\n".join(keep)


def compare(old: Path, new: Path) -> int:
    files_old = {p.relative_to(old) for p in old.rglob("*") if p.is_file()}
    files_new = {p.relative_to(new) for p in new.rglob("*") if p.is_file()}
    problems = [f"only in old: {p}" for p in sorted(files_old - files_new)]
    problems += [f"only in new: {p}" for p in sorted(files_new - files_old)]
    for rel in sorted(files_old & files_new):
        why = _same(old / rel, new / rel, (old, new))
        if why:
            problems.append(f"{rel}: {why}")
    print(f"compared {len(files_old & files_new)} outputs")
    for line in problems:
        print("DIFF", line)
    print("bit-identical" if not problems else f"{len(problems)} differences")
    return 1 if problems else 0


def _record_tree(src: Path, out: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
    subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--record", str(out), "--src", str(src)],
        check=True,
        env=env,
        cwd=ROOT,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", help="commit to compare this tree against")
    parser.add_argument("--old-recording", type=Path, help="a recording made earlier (instead of --old)")
    parser.add_argument("--record", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--src", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--keep", type=Path, help="keep the recordings here (old/, new/)")
    args = parser.parse_args()
    if args.record:
        sys.path.insert(0, str(args.src))
        import anyres

        assert Path(anyres.__file__).resolve().is_relative_to(args.src.resolve()), anyres.__file__
        record(args.record, args.src.parent)
        return 0
    base = args.keep or Path(tempfile.mkdtemp(prefix="bitid-"))
    if args.old_recording:
        old = args.old_recording
    else:
        old = base / "old"
        tree = base / "old-tree"
        if not old.exists():
            subprocess.run(["git", "worktree", "add", "--detach", str(tree), args.old], check=True, cwd=ROOT)
            try:
                _record_tree(tree / "src", old)
            finally:
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], check=False, cwd=ROOT)
    new = base / "new"
    shutil.rmtree(new, ignore_errors=True)
    _record_tree(ROOT / "src", new)
    return compare(old, new)


if __name__ == "__main__":
    sys.exit(main())
