"""The two halves of a check as plain data: what the kernel may send, what the grader accepts."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pandas as pd
import pytest

from mlsd.grading import extraction
from mlsd.grading.checks import (
    CheckFailed,
    DecodeError,
    Missing,
    Raised,
    Unsupported,
    Values,
    close,
    decode,
    expect,
    same,
    same_frame,
)


def roundtrip(value):
    return decode(json.loads(json.dumps(extraction.encode(value))))


def test_plain_values_travel_unchanged():
    value = {"n": 3, "x": 0.25, "s": "a", "b": True, "none": None, "list": [1, [2, 3]], "nan": float("nan")}
    back = roundtrip(value)
    assert back["list"] == [1, [2, 3]] and back["b"] is True and np.isnan(back["nan"])
    assert roundtrip(np.int64(7)) == 7 and type(roundtrip(np.float32(0.5))) is float
    assert roundtrip(np.array([1, 2])) == [1, 2] and roundtrip((1, 2)) == [1, 2]


def test_frames_travel_as_parquet_and_keep_their_values():
    frame = pd.DataFrame({"month": ["2025-01", "2025-02"], "rate": [0.1, 0.2], "n": [1, 2]})
    back = roundtrip(frame)
    assert same_frame(back, frame) and list(back.columns) == ["month", "rate", "n"]
    series = pd.Series([1.0, 2.0], index=pd.Index(["a", "b"], name="key"), name="value")
    assert list(roundtrip(series).columns) == ["key", "value"]


def test_objects_with_behaviour_never_reach_the_grader():
    class Agreeable(float):
        def __eq__(self, other):
            return True

    assert roundtrip(Agreeable(1.0)) == Unsupported("Agreeable")
    assert roundtrip({1: "x"}) == Unsupported("a dict with keys that are not strings")
    assert roundtrip(extraction.call(lambda: 1 / 0)) == Raised("ZeroDivisionError")
    assert not same(roundtrip(Agreeable(1.0)), 1.0)


def test_decode_refuses_what_encode_never_makes():
    for payload in ({"__pickle__": "x"}, {"a": 1, "b": 2, "c": 3}, {"__float__": "1e400"}):
        with pytest.raises(DecodeError):
            decode(payload)
    deep = []
    for _ in range(40):
        deep = [deep]
    with pytest.raises(DecodeError, match="nested too deep"):
        decode(deep)


def test_a_compressed_frame_cannot_blow_up_in_the_grader():
    buffer = io.BytesIO()
    pd.DataFrame({"zero": np.zeros(3_000_000, dtype="int8")}).to_parquet(buffer, compression="zstd")
    payload = {"__frame__": base64.b64encode(buffer.getvalue()).decode()}
    assert len(payload["__frame__"]) < 1_000_000  # small on the wire
    with pytest.raises(DecodeError, match="too large"):
        decode(payload)


def test_comparisons():
    assert same(1, 1.0) and not same(True, 1) and not same([1, 2], [2, 1])
    assert close(0.1 + 0.2, 0.3) and not close(1.0, 1.01) and close(1.0, 1.01, rtol=0.05)
    a = pd.DataFrame({"x": [1, 2], "y": ["a", "b"]})
    b = pd.DataFrame({"y": ["b", "a"], "x": [2.0, 1.0]})
    assert same_frame(a, b) and not same_frame(a, b, any_order=False)
    assert not same_frame(a, b.assign(x=[2.0, 1.5])) and same_frame(a, b.assign(x=[2.0, 1.0 + 1e-12]))
    assert not same_frame(a, "not a frame")


def test_expect_and_values():
    expect(True, "fine")
    expect(np.float64(1) > 0, "a NumPy comparison")
    for falsy in (False, 1, "yes", None, [True]):
        with pytest.raises(CheckFailed):
            expect(falsy, "only True passes")
    values = Values.from_record({"check": "c", "values": {"a": 1}})
    assert values["a"] == 1 and "b" not in values
    with pytest.raises(Missing):
        values["b"]
