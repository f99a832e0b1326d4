"""Findings in words: the phrases every report sentence shares (layer spans, ratios, seed verdicts)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def layer_span(layers: np.ndarray) -> str:
    """Sorted layer ids as a span: [25, 26, 27] -> '25–27'; [3] -> '3'."""
    return f"{layers[0]}–{layers[-1]}" if len(layers) > 1 else f"{layers[0]}"


def peak_window(profile: pd.Series) -> tuple[int, int]:
    """(first, last) layer of the window of up to 5 adjacent layers (a sixth of the depth) with the
    highest mean: where a single-seed profile is highest, smoothed over neighbours."""
    width = max(1, min(5, len(profile) // 6 or 1))
    end = int(profile.sort_index().rolling(width).mean().idxmax())
    return end - width + 1, end


UNTESTED = "not tested against seed noise"
ONE_SEED = f"one seed: {UNTESTED}"
# With two seeds the test passes on weak evidence: say so where the verdict is given.
COARSE = " (a coarse test: the s.d. of two values has one degree of freedom)"


def rounds_to_one(ratio: float) -> bool:
    """Whether a ratio prints as 1.00× either way round."""
    return f"{max(ratio, 1 / ratio):.2f}" == "1.00"


def ratio_words(ratio: float) -> str:
    """A late/early ratio in words: '1.03× more', '1.25× less', or 'about the same' when it rounds to 1.00."""
    if rounds_to_one(ratio):
        return "about the same (1.00×)"
    return f"{ratio:.2f}× more" if ratio > 1 else f"{1 / ratio:.2f}× less"


def layers_phrase(layers: list[int]) -> str:
    """[23] -> 'layer 23'; [3, 4, 5, 9] -> 'layers 3–5, 9'."""
    return f"layer {layers[0]}" if len(layers) == 1 else f"layers {layer_ranges(layers)}"


def layer_ranges(layers: list[int]) -> str:
    """[3, 4, 5, 9] -> '3–5, 9'."""
    spans, start = [], None
    for i, x in enumerate(layers):
        if start is None:
            start = x
        if i + 1 == len(layers) or layers[i + 1] != x + 1:
            spans.append(f"{start}–{x}" if x != start else f"{x}")
            start = None
    return ", ".join(spans)
