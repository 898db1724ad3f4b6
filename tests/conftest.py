"""Fixtures shared by the test modules."""

import numpy as np
import pytest

from convscope import windows


# ----- conv backward bands -----------------------------------------------------------------------
@pytest.fixture(params=["whole", "row_by_row"])
def bands(request, monkeypatch):
    """Run a conv test twice: its backward rebuilds the window matrix in one band (the default
    budget is far above these small shapes), then one output row at a time (overlapping spans)."""
    if request.param == "row_by_row":
        monkeypatch.setattr(windows, "BAND_BYTES", 1)
    return request.param


# ----- a tiny digits cache for the command line ---------------------------------------------------
@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fake `digits` cache: 300 28x28 images whose class is a bright bar's row."""
    rng = np.random.default_rng(0)
    labels = np.arange(300) % 10
    images = (rng.random((300, 1, 28, 28)) * 40).astype(np.uint8)
    for k in range(10):
        images[labels == k, 0, 4 + 2 * k, 6:22] = 255
    folder = tmp_path / "cache" / "digits"
    folder.mkdir(parents=True)
    np.savez(folder / "digits.npz", images=images, labels=labels.astype(np.int64), is_val=np.arange(300) % 5 == 0)
    monkeypatch.setenv("CONVSCOPE_DATA", str(tmp_path / "cache"))
    return tmp_path


@pytest.fixture
def scenes(cache, monkeypatch):
    """The scene datasets (digit-scenes, digit-masks, digit-centres) made from the fake digits
    cache, few of them: 24 training and 8 validation scenes each."""
    import dataclasses

    from convscope.data.scene_sets import SCENE_DATASETS
    for name, recipe in SCENE_DATASETS.items():
        monkeypatch.setitem(SCENE_DATASETS, name, dataclasses.replace(recipe, sizes=(("train", 24), ("val", 8))))
    return cache
