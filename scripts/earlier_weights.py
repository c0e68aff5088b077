"""Write an earlier shipped version of a model folder from git history into a run folder.

Configs that start from an older stage (``init: runs/liif-6130``) name folders that only git still holds. This
finds the version of ``src/anyres/weights/NAME`` whose ``config.json`` records ``--iterations`` (or the one at
``--rev``) and copies its files to ``--out``::

  python scripts/earlier_weights.py liif --iterations 6130 --out runs/liif-6130
  python scripts/earlier_weights.py liif-real --rev e25b006~1 --out runs/liif-real/model

With neither option it lists the versions (commit, date, iterations). Run from the repository root.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

FILES = ("config.json", "model.safetensors")


def git(*args: str, text: bool = True) -> str | bytes:
    out = subprocess.run(["git", *args], check=True, capture_output=True, text=text)
    return out.stdout


def versions(name: str) -> list[tuple[str, str, int | None]]:
    """(commit, date, iterations) of every commit that changed the folder, newest first."""
    path = f"src/anyres/weights/{name}/config.json"
    log = str(git("log", "--format=%h %ad", "--date=short", "--", str(Path(path).parent)))
    found = []
    for line in log.splitlines():
        commit, date = line.split()
        try:
            config = json.loads(git("show", f"{commit}:{path}"))
        except subprocess.CalledProcessError:  # the commit deleted the folder
            continue
        found.append((commit, date, config.get("iterations")))
    return found


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name", help="shipped model folder name (src/anyres/weights/NAME)")
    ap.add_argument("--iterations", type=int, help="the version whose config.json records this many iterations")
    ap.add_argument("--rev", help="a git revision instead of --iterations")
    ap.add_argument("--out", type=Path, help="folder to write (created; existing files are replaced)")
    args = ap.parse_args()
    found = versions(args.name)
    if not found:
        print(f"error: git history has no src/anyres/weights/{args.name}/config.json", file=sys.stderr)
        return 2
    if args.iterations is None and args.rev is None:
        for commit, date, its in found:
            print(f"{commit}  {date}  iterations {its}")
        return 0
    if args.out is None:
        print("error: --out is required with --iterations or --rev", file=sys.stderr)
        return 2
    rev = args.rev
    if rev is None:
        matches = [c for c, _, its in found if its == args.iterations]
        if not matches:
            have = ", ".join(str(its) for _, _, its in found)
            print(f"error: no version of {args.name} with {args.iterations} iterations (have: {have})", file=sys.stderr)
            return 2
        rev = matches[0]
    args.out.mkdir(parents=True, exist_ok=True)
    for f in FILES:
        try:
            data = git("show", f"{rev}:src/anyres/weights/{args.name}/{f}", text=False)
        except subprocess.CalledProcessError:
            print(f"error: {rev} has no src/anyres/weights/{args.name}/{f}", file=sys.stderr)
            return 2
        (args.out / f).write_bytes(data)  # type: ignore[arg-type]
    print(f"{args.name} at {rev} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
