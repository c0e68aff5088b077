"""Dependencies point one way (STYLE.md): a module imports only from its own layer or lower ones."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "anyres"

# Lower number = lower layer. A package's modules share its rank.
RANK = {
    "errors": 0, "registry": 0, "io": 0,
    "ops": 1, "nn": 2, "models": 3, "metrics": 3, "degrade": 3, "data": 4, "infer": 4,
    "hub": 5, "pretrained": 5, "api": 6, "evaluate": 6, "train": 7, "compare": 7, "cli": 8, "__init__": 9,
}


def _top(module_path: Path) -> str:
    rel = module_path.relative_to(SRC)
    return rel.parts[0].removesuffix(".py")


def _imports(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("anyres."):
            yield node.module.split(".")[1], node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            yield node.module.split(".")[0], node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("anyres."):
                    yield alias.name.split(".")[1], node.lineno


FILES = sorted(p for p in SRC.rglob("*.py"))


def test_every_module_has_a_rank():
    assert {_top(p) for p in FILES} <= set(RANK)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_point_down(path):
    own = _top(path)
    for target, line in _imports(path):
        if target == own or target not in RANK:
            continue
        assert RANK[target] <= RANK[own], f"{path.relative_to(SRC)}:{line} imports anyres.{target} (a higher layer)"
