"""Fixtures shared by the test modules."""

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
