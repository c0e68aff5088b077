"""The package rule (docs/architecture.md): core <- degrade <- sr, enhancement <- evaluation <- train <- cli.

A module may import its own package and anything in a lower layer; capabilities of one layer (``sr`` and
``enhancement``) do not import each other. Function-level imports count too.
"""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "anyres"

CORE = (
    "errors",
    "checks",
    "registry",
    "io",
    "hub",
    "ops",
    "nn",
    "metrics",
    "pictures",
    "config",
    "parallel",
    "progress",
)
LAYER = {
    **{name: 0 for name in CORE},
    "degrade": 1,
    "sr": 2,
    "enhancement": 2,
    "evaluation": 3,
    "train": 4,
    "serve": 4,
    "cli": 5,
    "__init__": 6,
    "__main__": 6,
}
# Inside the core, a stricter order: errors and checks import nothing of anyres; ops import no nn, ...
CORE_ORDER = {
    "errors": 0,
    "parallel": 0,
    "progress": 0,
    "checks": 1,
    "registry": 1,
    "io": 2,
    "config": 2,
    "ops": 2,
    "nn": 3,
    "metrics": 3,
    "pictures": 3,
    "hub": 4,
}


def _top(module_path: Path) -> str:
    return module_path.relative_to(SRC).parts[0].removesuffix(".py")


def _imports(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("anyres."):
            yield node.module.split(".")[1], node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module == "anyres":
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path.relative_to(SRC)}:{node.lineno}: relative import (use anyres.…)")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("anyres."):
                    yield alias.name.split(".")[1], node.lineno


FILES = sorted(p for p in SRC.rglob("*.py"))


def test_every_module_has_a_layer():
    assert {_top(p) for p in FILES} <= set(LAYER)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_point_down(path):
    own = _top(path)
    for target, line in _imports(path):
        if target == own:
            continue
        where = f"{path.relative_to(SRC)}:{line} imports anyres.{target}"
        assert target in LAYER, f"{where}, which has no layer"
        assert LAYER[target] < LAYER[own] or (LAYER[own] == 0 and CORE_ORDER[target] <= CORE_ORDER[own]), (
            f"{where} (a higher layer or a sibling capability)"
        )
