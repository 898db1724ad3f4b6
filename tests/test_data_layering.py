"""convscope.data stays at level 3: NumPy, Pillow, the standard library, levels 1-2; never nn; no pickle."""
import ast
import sys
from pathlib import Path

import pytest

import convscope.data

DATA_DIR = Path(convscope.data.__file__).parent
MODULES = sorted(DATA_DIR.glob("*.py"))
ALLOWED_THIRD_PARTY = {"numpy", "PIL"}
ALLOWED_CONVSCOPE = {"data", "tensor", "windows", "files", "functional"}  # STYLE.md: level 3 sees levels 1-2


def imported_modules(tree: ast.AST):
    """Absolute names of what a data module imports, relative imports resolved."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            package = ["convscope", "data"][:3 - node.level] if node.level else []
            yield ".".join(package + ([node.module] if node.module else [])) or "convscope"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_imports_stay_at_level_3(path):
    for module in imported_modules(ast.parse(path.read_text())):
        top = module.split(".")[0]
        if top == "convscope":  # its own modules, or levels 1-2 (never nn, optim or above)
            assert module.split(".")[1] in ALLOWED_CONVSCOPE, f"{path.name} imports {module}"
        else:
            assert top in ALLOWED_THIRD_PARTY or top in sys.stdlib_module_names or top == "__future__", \
                f"{path.name} imports {module}"
        assert top not in ("pickle", "dill", "joblib"), f"{path.name} imports {module}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_every_np_load_refuses_pickle(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and ast.unparse(node.func) in ("np.load", "numpy.load"):
            flags = {k.arg: ast.unparse(k.value) for k in node.keywords}
            assert flags.get("allow_pickle") == "False", f"{path.name}: {ast.unparse(node)}"


def test_no_global_random_state():
    for path in MODULES:
        source = path.read_text()
        for banned in ("np.random.seed", "np.random.rand(", "np.random.randint", "np.random.shuffle",
                       "np.random.permutation", "np.random.normal", "np.random.uniform"):
            assert banned not in source, f"{path.name} uses {banned}"
