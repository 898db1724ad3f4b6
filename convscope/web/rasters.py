"""Feature maps as the page draws them: ``{"shape": [C, H, W], "lo", "hi", "data"}``, ``data``
being base64 of uint8 grey levels (C-order), ``lo`` -> 0 and ``hi`` -> 255 on one scale for
the whole layer (a weak channel looks dark, as in ``convscope viz``).
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np


def raster(values: np.ndarray) -> dict[str, Any]:
    """One layer's output for one image, (C, H, W) or (F,), as grey levels on one scale:
    ``round(255 * (v - lo) / (hi - lo))`` (all 0 for a constant layer)."""
    values = np.asarray(values)
    lo, hi = float(values.min()), float(values.max())
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    grey = np.rint((values - np.float32(lo)) * np.float32(scale)).clip(0, 255).astype(np.uint8)
    return {"shape": list(values.shape), "lo": lo, "hi": hi,
            "data": base64.b64encode(grey.tobytes()).decode("ascii")}
