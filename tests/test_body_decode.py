"""app.core.body.decode_json: orjson's reading where it reads a body as ``json.loads`` does, the standard
library's (values and error words) everywhere else."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core import body as body_mod
from app.core.body import decode_json
from app.core.errors import BadRequest, InvalidRequest
from benchmarks.scale import linear_net


def typed(value: object) -> object:
    """``value`` with every number tagged by its type and spelled by repr: 1, 1.0 and -0.0 all differ."""
    if isinstance(value, dict):
        return [("dict", k, typed(v)) for k, v in value.items()]  # key order kept
    if isinstance(value, list):
        return ["list", *(typed(v) for v in value)]
    if isinstance(value, float):
        return ("float", "nan" if math.isnan(value) else repr(value))
    return (type(value).__name__, value)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None)
@given(json_values, st.booleans())
def test_any_document_reads_as_json_loads_reads_it(value, ascii_only):
    raw = json.dumps(value, ensure_ascii=ascii_only).encode()
    assert typed(decode_json(raw)) == typed(json.loads(raw))


# number literals as a person or a program writes them: up to 25 fraction digits, exponents to float's ends
numbers = st.from_regex(r"-?(0|[1-9][0-9]{0,17})(\.[0-9]{1,25})?([eE][+-]?[0-9]{1,3})?", fullmatch=True)


@settings(max_examples=300, deadline=None)
@given(st.lists(numbers, min_size=1, max_size=8))
def test_number_literals_read_to_the_same_value_and_type(literals):
    raw = ("[" + ",".join(literals) + "]").encode()
    assert typed(decode_json(raw)) == typed(json.loads(raw))


def test_a_network_body_reads_without_the_standard_library(monkeypatch):
    # the fast path is taken for the app's own bodies (no 19-digit run, nothing orjson refuses)
    raw = json.dumps(linear_net(16, 64)).encode()
    expected = json.loads(raw)

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("json.loads was called")

    monkeypatch.setattr(body_mod.json, "loads", refuse)
    assert decode_json(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        b"NaN",
        b'{"a": [Infinity, -Infinity, NaN]}',
        b"[1e400, -1e999]",  # past float's range: inf, as Python reads it
        b'["\\ud800", "\\udfff"]',  # lone surrogates
        b'"\xed\xa0\x80"',  # one written as UTF-8 bytes (the standard library lets surrogates pass)
        b'\xef\xbb\xbf{"layer": {"type": "ReLU"}}',  # a UTF-8 byte-order mark
        '{"layer": {"type": "ReLU"}}'.encode("utf-16"),
        '{"a": "é"}'.encode("utf-32-le"),
        b"null",
        b"  17  ",
        b'{"a": 1, "a": 2, "b": 3}',  # the last duplicate wins, in the first one's place
        b"[9223372036854775807, -9223372036854775808, 0.1234567890123456789]",  # 19 digits: the standard library
    ],
)
def test_what_orjson_refuses_or_reads_otherwise_reads_as_before(raw):
    assert typed(decode_json(raw)) == typed(json.loads(raw))


@pytest.mark.parametrize(
    "raw",
    [
        b'{"layer": ',
        b"{'a': 1}",
        b"[1, 2,]",
        b'{"a" 1}',
        b"\xff\xfe\x00",
        b"[1] x",
        b"tru",
        b'"\x01"',
        b'"a\tb"',
        b"01",
        b"-",
        b".5",
        b"+1",
        b"0x10",
    ],
)
def test_invalid_json_is_a_400_in_the_standard_librarys_words(raw):
    try:
        json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        words = f"the request body is not valid JSON: {exc}"
    else:
        pytest.fail("the sample is valid JSON")
    with pytest.raises(BadRequest) as got:
        decode_json(raw)
    assert str(got.value.to_dict()["detail"]) == words


def test_an_integer_past_int64_is_named_not_read_as_a_float():
    raw = b'{"layer": {"type": "Linear", "in_features": 18446744073709551616, "out_features": 2}}'
    with pytest.raises(InvalidRequest) as got:
        decode_json(raw)
    assert got.value.to_dict()["detail"].startswith("layer.in_features: 18446744073709551616 is out of range")
