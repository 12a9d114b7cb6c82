"""app.core.body.max_depth: the deepest bracket nesting outside strings, as a plain walk counts it."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.body import MAX_DEPTH, max_depth


def walked(raw: bytes) -> int:
    """The reference: one character at a time, strings (with escapes) skipped."""
    depth = deepest = 0
    text = raw.decode()
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == '"':
            i += 1
            while text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
        i += 1
    return deepest


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab', max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(alphabet='[]{}"a', max_size=3), inner, max_size=3)
    ),
    max_leaves=40,
)


def nest(value: object, levels: int) -> object:
    for i in range(levels):
        value = [value] if i % 2 else {"k": value}
    return value


@settings(max_examples=150, deadline=None)
@given(json_values, st.integers(min_value=0, max_value=100))
def test_max_depth_is_the_deepest_nesting_outside_strings(value, levels):
    raw = json.dumps(nest(value, levels)).encode()
    opened = raw.count(b"[") + raw.count(b"{")
    # below MAX_DEPTH brackets in all (strings included) no nesting can pass the limit: it answers 0 unread
    assert max_depth(raw) == (walked(raw) if opened >= MAX_DEPTH else 0)


def test_a_string_full_of_brackets_does_not_nest():
    raw = json.dumps({"name": "[" * 500, "layers": [[[]]]}).encode()
    assert max_depth(raw) == 4  # the object and its three lists


# strings without escapes (what the app's client sends): the fast way over brackets and quotes alone
plain_values = st.recursive(
    st.none() | st.integers() | st.text(alphabet="[]{}ab ,:", max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(alphabet="[]{}a", max_size=3), inner, max_size=3)
    ),
    max_leaves=40,
)


@settings(max_examples=150, deadline=None)
@given(plain_values, st.integers(min_value=MAX_DEPTH - 8, max_value=100))
def test_a_body_without_escapes_measures_as_the_walk_does(value, levels):
    raw = json.dumps(nest(value, levels)).encode()
    assert b"\\" not in raw
    opened = raw.count(b"[") + raw.count(b"{")
    assert max_depth(raw) == (walked(raw) if opened >= MAX_DEPTH else 0)
