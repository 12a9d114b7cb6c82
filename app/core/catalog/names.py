"""The catalog's answer to a type name it does not have: the reason the installed torch lacks it, or the
names it might have meant. Plain strings in, an error out: the web process answers /api/layers/{type}
from the catalog as data (it never builds the registry, which imports torch), in the same words."""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping

from app.core.errors import UnknownLayer


def unknown_layer(
    type_name: str, known: Collection[str], absent: Mapping[str, str], *, field: str = "layer.type"
) -> UnknownLayer:
    """The 404 for ``type_name``, which is not among ``known`` (``absent``: types this torch lacks, and why)."""
    if type_name in absent:
        return UnknownLayer(
            f"{absent[type_name]}, so this server cannot build it (GET /api/layers lists the {len(known)} types it can)",
            field=field,
        )
    close = difflib.get_close_matches(type_name, list(known), n=3, cutoff=0.6)
    lowered = {k.lower(): k for k in known}
    if type_name.lower() in lowered:
        close = [lowered[type_name.lower()]]
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    return UnknownLayer(
        f"Unknown layer type {type_name!r}.{hint} GET /api/layers lists the {len(known)} types this server knows.",
        field=field,
    )
