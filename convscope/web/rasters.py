"""Feature maps as the page draws them: ``{"shape": [C, H, W], "lo", "hi", "data"}``, ``data``
being base64 of uint8 grey levels (C-order), ``lo`` -> 0 and ``hi`` -> 255 on one scale for
the whole layer (a weak channel looks dark, as in ``convscope viz``).
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

from ..viz import grids


def raster(values: np.ndarray) -> dict[str, Any]:
    """One layer's output for one image, (C, H, W) or (F,), as grey levels on one scale."""
    values = np.asarray(values, dtype=np.float64)
    lo, hi = float(values.min()), float(values.max())
    grey = np.round(grids.to_unit(values, lo, hi) * 255).astype(np.uint8)
    return {"shape": list(values.shape), "lo": lo, "hi": hi,
            "data": base64.b64encode(grey.tobytes()).decode("ascii")}
