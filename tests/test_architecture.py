"""The folder tree is the architecture (STYLE.md): lower levels never import higher ones."""

import ast
from pathlib import Path

import pytest

import convscope

ROOT = Path(convscope.__file__).parent
LEVEL = {"tensor": 1, "habits": 1, "windows": 1, "files": 1, "locks": 1,
         "functional": 2, "nn": 3, "optim": 3, "data": 3,
         "metrics": 3, "detection": 3, "heatmaps": 3,
         "trace": 4, "summary": 4, "explain": 4, "lesson": 4, "io": 4, "schema": 4, "inference": 4, "tasks": 4,
         "train": 4, "models": 4, "recipes": 4, "runs": 4, "run_model": 4, "parallel": 4, "arithmetic": 4,
         "interop": 4, "viz": 5, "cli": 6, "web": 6}
MODULES = sorted(p for p in ROOT.rglob("*.py") if p.name != "__init__.py" or p.parent != ROOT)


def imported_names(path):
    package = list(path.relative_to(ROOT.parent).with_suffix("").parts[:-1])
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            names = [node.module] if node.module else [alias.name for alias in node.names]
            yield from (".".join(base + [n]) for n in names)


def level(path):
    return LEVEL[path.relative_to(ROOT).parts[0].removesuffix(".py")]


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_module_imports_respect_levels(path):
    top = path.relative_to(ROOT).parts[0].removesuffix(".py")
    for name in imported_names(path):
        parts = name.split(".")
        assert parts[0] not in ("pickle", "dill", "joblib", "cloudpickle"), f"{path}: imports {name}"
        if parts[0] == "torch":
            raise AssertionError(f"{path}: the package must not import torch (test-only reference)")
        if parts[0] != "convscope" or len(parts) < 2:
            continue
        target = parts[1]
        if target not in LEVEL:  # a name from the package root, e.g. __version__
            assert target in convscope.__all__, f"{path}: imports unknown {name}"
            continue
        assert LEVEL[target] <= level(path), f"{path} (level {level(path)}) imports {name} (level {LEVEL[target]})"
        if top in ("optim", "data"):
            assert target != "nn", f"{path}: optim and data do not import nn"
        if level(path) == 1:
            assert target in ("tensor", "habits", "windows", "files"), f"{path}: level 1 imports only numpy"


def test_no_pickle_on_read_paths():
    for path in MODULES:
        text = path.read_text()
        assert "allow_pickle=True" not in text.replace(" ", ""), path
        assert "pickle.load" not in text, path
