"""summary, explain and arithmetic stay at level 4 and viz at level 5; only viz.render plots or writes files."""

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
         "interop": 4, "viz": 5, "cli": 6}
MODULES = ([ROOT / "trace.py", ROOT / "summary.py", ROOT / "explain.py"] + sorted((ROOT / "arithmetic").glob("*.py"))
           + sorted((ROOT / "viz").glob("*.py")))


def package_of(path):
    return ".".join(("convscope",) + path.relative_to(ROOT).with_suffix("").parts[:-1])


def imports(path):
    """Absolute names of everything ``path`` imports (relative imports resolved)."""
    base = package_of(path).split(".")
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parent = base[:len(base) - node.level + 1] if node.level else []
            if node.module:
                yield ".".join(parent + [node.module])
            else:
                yield from (".".join(parent + [alias.name]) for alias in node.names)


def level_of(path):
    return LEVEL[path.relative_to(ROOT).parts[0].removesuffix(".py")]


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_only_lower_or_same_levels(path):
    for name in imports(path):
        parts = name.split(".")
        if parts[0] == "convscope" and len(parts) > 1:
            assert LEVEL[parts[1]] <= level_of(path), f"{path.name} (level {level_of(path)}) imports {name}"
        assert parts[0] not in ("pickle", "dill", "joblib")


@pytest.mark.parametrize("path", [p for p in MODULES if p.name != "render.py"], ids=lambda p: p.name)
def test_only_render_plots_or_writes(path):
    assert not any(name.split(".")[0] in ("matplotlib", "PIL") for name in imports(path)), path.name
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        assert not (isinstance(func, ast.Name) and func.id == "open"), f"{path.name}: {ast.unparse(node)}"
        if isinstance(func, ast.Attribute) and func.attr in ("write_text", "write_bytes", "save", "savefig"):
            assert ast.unparse(func.value) == "render", f"{path.name}: {ast.unparse(node)}"
