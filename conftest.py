"""Doctest namespace: docstring examples may use ``np`` and ``Tensor`` without importing."""

import numpy as np
import pytest

from convscope import Tensor


@pytest.fixture(autouse=True)
def _doctest_names(doctest_namespace):
    doctest_namespace.update(np=np, Tensor=Tensor)
