"""``encode_payload``'s one-pass serialisation gives the text of the plain-data round trip, always."""

from __future__ import annotations

import dataclasses
import enum
import typing as t
import uuid
from datetime import datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flask_difylogstore import payloads


class _Mood(enum.Enum):
    GOOD = "good"


@dataclasses.dataclass
class _Point:
    x: int
    labels: dict[str, int]


def _round_trip(value: dict[str, t.Any], truncator: payloads.Truncator | None) -> payloads.EncodedPayload:
    """The reference: to plain JSON data, then sorted, then truncated when too large."""
    plain = payloads.to_jsonable(value)
    full_text = payloads.dumps(plain, sort_keys=True)
    if truncator is None or len(full_text.encode("utf-8")) <= truncator.limits.max_size:
        return payloads.EncodedPayload(full_text)
    truncated, _ = truncator.truncate_mapping(plain)
    return payloads.EncodedPayload(payloads.dumps(truncated, sort_keys=True), truncated, full_text)


CASES: list[dict[t.Any, t.Any]] = [
    {"b": 1, "a": {"z": [1, 2.5, float("nan"), float("inf")], "y": None}},
    {"lone": "\ud800 surrogate"},
    {"nested": {1: "int key", "1": "str key"}},
    {"huge": 2**70, "edge": 2**64 - 1, "negative": -(2**63)},
    {
        "when": datetime(2020, 1, 1, 12, 30),
        "dec": Decimal("1.5"),
        "whole": Decimal("3"),
        "id": uuid.UUID(int=5),
        "mood": _Mood.GOOD,
        "set": {3, 1, 2},
        "point": _Point(1, {"b": 2, "a": 1}),
        "raw": b"bytes",
        "tuple": (1, "two"),
    },
    {"é": 1, "e": 2, "Z": 3, "": 4},
    {"text": "y" * 5000},
    {"big": "z" * 4000, "a": 1},
]


@pytest.mark.parametrize("value", CASES)
@pytest.mark.parametrize("max_size", [None, 1000, 1024_000])
def test_one_pass_matches_the_round_trip(value: dict[str, t.Any], max_size: int | None) -> None:
    truncator = None if max_size is None else payloads.Truncator(payloads.TruncationLimits(max_size=max_size))
    got = payloads.encode_payload(value, truncator)
    want = _round_trip(value, truncator)
    assert (got.text, got.full_text, got.truncated_value) == (want.text, want.full_text, want.truncated_value)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=8), _json, max_size=6))
def test_one_pass_matches_the_round_trip_for_any_json(value: dict[str, t.Any]) -> None:
    truncator = payloads.Truncator(payloads.TruncationLimits(max_size=200, string_length=10, array_length=3))
    got = payloads.encode_payload(value, truncator)
    want = _round_trip(value, truncator)
    assert (got.text, got.full_text, got.truncated_value) == (want.text, want.full_text, want.truncated_value)
