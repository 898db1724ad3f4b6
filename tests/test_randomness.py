"""Randomness is passed in: nothing in convscope draws from NumPy's global state or from an
unseeded generator, and layers built without ``rng=`` are reproducible."""

import ast
from pathlib import Path

import numpy as np
import pytest

import convscope
from convscope import nn
from convscope.models import build

PACKAGE = Path(convscope.__file__).parent
ALLOWED = {"default_rng", "Generator", "SeedSequence", "BitGenerator", "PCG64"}  # no global state


def random_uses(tree):
    """(line, text) of every ``np.random.<name>`` / ``numpy.random.<name>`` attribute and every
    ``default_rng()`` call without a seed."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and ast.unparse(node.value) in ("np.random", "numpy.random"):
            if node.attr not in ALLOWED:
                yield node.lineno, ast.unparse(node)
        if isinstance(node, ast.Call) and ast.unparse(node.func).endswith("default_rng") and not node.args \
                and not node.keywords:
            yield node.lineno, ast.unparse(node)
        if isinstance(node, ast.ImportFrom) and node.module in ("numpy.random", "random"):
            yield node.lineno, f"from {node.module} import ..."
        if isinstance(node, ast.Import) and any(alias.name == "random" for alias in node.names):
            yield node.lineno, "import random"


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_global_or_unseeded_randomness(path):
    found = list(random_uses(ast.parse(path.read_text())))
    assert not found, f"{path.relative_to(PACKAGE)}: {found}"


def test_the_checker_finds_what_it_bans():
    bad = "import numpy as np\nnp.random.seed(0)\nx = np.random.rand(3)\ng = np.random.default_rng()\n"
    assert [text for _, text in sorted(random_uses(ast.parse(bad)))] == ["np.random.seed", "np.random.rand",
                                                                 "np.random.default_rng()"]


def weights(model):
    return [p.data.copy() for p in model.parameters()]


@pytest.mark.parametrize("name", ["lenet5", "vgg", "resnet"])
def test_models_without_rng_are_reproducible_after_manual_seed(name):
    nn.init.manual_seed(7)
    first = weights(build(name))
    second = weights(build(name))  # the default generator has moved on: new weights
    nn.init.manual_seed(7)
    again = weights(build(name))
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert not all(np.array_equal(a, b) for a, b in zip(first, second))


def test_rng_must_be_a_generator():
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator.*got int"):
        nn.Conv2d(1, 2, 3, rng=0)
