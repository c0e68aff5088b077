"""Python lines per package of src/anyres at a git revision, and the largest file.

python scripts/package_lines.py 7f13263     # before the capability layout
python scripts/package_lines.py HEAD
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter


def main(rev: str) -> None:
    files = subprocess.run(
        ["git", "ls-tree", "-r", "--name-only", rev, "src/anyres"], check=True, capture_output=True, text=True
    ).stdout.split()
    per_package: Counter[str] = Counter()
    sizes = {}
    for path in files:
        if not path.endswith(".py"):
            continue
        text = subprocess.run(["git", "show", f"{rev}:{path}"], check=True, capture_output=True, text=True).stdout
        parts = path.split("/")[2:]
        package = parts[0] if len(parts) > 1 else parts[0].removesuffix(".py") + " (module)"
        sizes[path] = len(text.splitlines())
        per_package[package] += sizes[path]
    for package, lines in sorted(per_package.items(), key=lambda kv: -kv[1]):
        print(f"{package:28s} {lines:6d}")
    print(f"{'total':28s} {sum(per_package.values()):6d}")
    largest = max(sizes, key=sizes.get)
    print(
        f"largest file: {largest} ({sizes[largest]} lines); files over 500 lines: "
        f"{sum(n > 500 for n in sizes.values())}"
    )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "HEAD")
