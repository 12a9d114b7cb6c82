"""Decoding a request body: depth check, then ``orjson.loads`` (``json.loads`` where orjson would read it
otherwise, or not at all), every failure a 400 naming what is wrong;
and encoding a response body (:func:`encode_json`), also in the worker.

This runs in a worker process, not in the web process: ``json.loads`` of an 8 MiB body of small
arrays takes seconds in C while holding the GIL, which in a thread would still stall the event loop.
"""

from __future__ import annotations

import itertools
import json
import operator
import re
from typing import Any

import orjson

from app.core.errors import BadRequest, InvalidRequest

MAX_DEPTH = 64

#: every integer in a request must fit torch's int64: no size, index, seed or parameter can be wider, and
#: a wider one overflows wherever it is turned into a float or a C long (2**1024 is no float at all)
INT64_MAX = 2**63 - 1
# 19 digits or more: the only integer literals that can lie outside int64 (a cheap test of the raw bytes)
_LONG_DIGITS = re.compile(rb"\d{19,}")

# A JSON string (quotes and escapes included): brackets inside strings do not nest.
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
# Every byte value except the four brackets, for bytes.translate(None, delete).
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
# ... and except the quote and the backslash too: a body's brackets and the strings' bounds
_NOT_BRACKETS_OR_QUOTES = bytes(b for b in range(256) if b not in b'[]{}"\\')
#: an opening bracket counts 2 and a closing one 0: the running sum less the brackets so far is the depth
_DEPTH_STEPS = bytes.maketrans(b"[{]}", b"\x02\x02\x00\x00")


def decode_json(raw: bytes) -> Any:
    """The body as JSON; too deep, not JSON, or a number Python will not read -> 400.

    orjson reads a network's 58 KB body in a third of ``json.loads``'s time, with the same values: every
    float correctly rounded, as Python's, and every integer of up to 18 digits exact. A body with a longer
    run of digits goes to the standard library (orjson reads an integer past 64 bits as a float), and so
    does one orjson refuses: the standard library reads it (NaN and Infinity, a number past float's range
    as inf, a lone surrogate, a byte-order mark, UTF-16 and UTF-32) or refuses it in its own words, as
    before (:func:`_stdlib_loads`).
    """
    if max_depth(raw) > MAX_DEPTH:
        raise BadRequest(f"the request body is nested deeper than {MAX_DEPTH} levels")
    if _LONG_DIGITS.search(raw):  # rare: then walk the document for the integer and its place
        value = _stdlib_loads(raw)
        check_integers(value)
        return value
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _stdlib_loads(raw)


def _stdlib_loads(raw: bytes) -> Any:
    """``json.loads(raw)``: what the standard library reads, or a 400 in its words."""
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"the request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise BadRequest("the request body is nested too deeply") from None
    except ValueError as exc:  # e.g. an integer literal past Python's 4300-digit conversion limit
        raise BadRequest(f"the request body has a number that cannot be read: {exc}") from None


def check_integers(value: Any) -> None:
    """Refuse (422) an integer outside int64, naming where it is (``layer.in_features``, ``inputs[0].shape[1]``)."""
    place = _wide_integer(value, "")
    if place is not None:
        field, number = place
        digits = str(abs(number))
        shown = digits if len(digits) <= 24 else f"{digits[:6]}…({len(digits)} digits)"
        sign = "-" if number < 0 else ""
        raise InvalidRequest(
            f"{field or 'the request body'}: {sign}{shown} is out of range; integers in a request must lie between "
            f"-2**63 and 2**63 - 1 (torch's 64-bit integers)",
            field=field or None,
        )


def _wide_integer(value: Any, field: str) -> tuple[str, int] | None:
    # iterative, not recursive; a place is a chain of (parent, key) spelled out only for the culprit,
    # so a list of a million numbers costs no million strings
    stack: list[tuple[Any, Any]] = [(value, None)]
    while stack:
        node, place = stack.pop()
        if isinstance(node, int) and not isinstance(node, bool):
            if not -INT64_MAX - 1 <= node <= INT64_MAX:
                return _spell(place, field), node
        elif isinstance(node, dict):
            stack.extend((v, (place, k)) for k, v in reversed(node.items()))
        elif isinstance(node, list):
            stack.extend((node[i], (place, i)) for i in range(len(node) - 1, -1, -1))
    return None


def _spell(place: Any, field: str) -> str:
    keys: list[Any] = []
    while place is not None:
        place, key = place
        keys.append(key)
    for key in reversed(keys):
        field += f"[{key}]" if isinstance(key, int) else (f".{key}" if field else str(key))
    return field


def max_depth(raw: bytes) -> int:
    """Deepest bracket nesting outside strings, at C speed (regex, translate, itertools).

    Opening brackets become 2 and closing ones 0, so the running sum less the count so far is the depth
    at each bracket; ``accumulate``, ``map`` and ``max`` walk it in C (8 MB of brackets: 0.29 s, what NumPy's
    cumsum took), and the web process does not import NumPy for it (about 6 MiB of its memory)."""
    if raw.count(b"[") + raw.count(b"{") < MAX_DEPTH:
        return 0
    if b"\\" not in raw:
        # no escapes (a body the app's client sends): a string is a quote, anything but a quote, and a quote,
        # so once all but brackets and quotes is gone, what lies between the 2k-th and 2k+1-th quote is
        # outside the strings: a split over a few KB of a network's 58 KB body, not a regex over all of it
        # (1.2 -> 0.3 ms), with the same answer as the general way
        outside = raw.translate(None, _NOT_BRACKETS_OR_QUOTES).split(b'"')[::2]
        skeleton = b"".join(outside).translate(_DEPTH_STEPS)
    else:
        skeleton = _STRING.sub(b"", raw).translate(_DEPTH_STEPS, _NOT_BRACKETS)
    if not skeleton:
        return 0
    return max(0, max(map(operator.sub, itertools.accumulate(skeleton), itertools.count(1))))


class JSONBytes(bytes):
    """A response body already encoded as JSON (the web layer sends it as it is)."""


def encode_json(value: Any) -> JSONBytes:
    """``value`` as compact UTF-8 JSON (the document Starlette's ``JSONResponse`` would send).

    Encoded in the worker that computed it: the web process then neither walks the response
    (FastAPI's ``jsonable_encoder``) nor encodes it on its event loop, and the pipe between the
    processes carries one bytes object instead of a pickled tree of lists. orjson, because the
    standard library's encoder spends most of its time formatting floats. Tensors reach here with
    non-finite values already written as strings (:mod:`app.core.tensors`).
    """
    return JSONBytes(dumps(value))


def dumps(value: Any) -> bytes:
    """:func:`encode_json`'s bytes as plain ``bytes``: for an answer about to be gzipped (app.core.tasks), whose
    JSON is read once by the compressor; making it a :class:`JSONBytes` copied it (0.44 ms for a 2.8 MB answer)."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
