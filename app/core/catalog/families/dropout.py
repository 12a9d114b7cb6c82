"""Dropout layers: Input: (*) -> Output: (*), zeroing elements (or channels) in training mode."""

from __future__ import annotations

from app.core.catalog.entries import inp, shape, torch_entry
from app.core.catalog.spec import Registry
from app.core.shapes.rules import (
    same,
)


def register(reg: Registry) -> None:
    for name, conv, ex in (
        ("Dropout", "(*)", shape(2, 8)),
        ("Dropout1d", "(N, C, L)", shape(2, 3, 8)),
        ("Dropout2d", "(N, C, H, W)", shape(1, 3, 4, 4)),
        ("Dropout3d", "(N, C, D, H, W)", shape(1, 2, 3, 4, 4)),
        ("AlphaDropout", "(*)", shape(2, 8)),
        ("FeatureAlphaDropout", "(N, C, *)", shape(1, 3, 4, 4)),
    ):
        torch_entry(reg, name, "dropout", {}, [inp(conv)], [ex], same)
