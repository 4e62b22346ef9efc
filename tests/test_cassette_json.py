"""The cassette JSON writer/reader (orjson when installed) means exactly what ``json`` means."""

from __future__ import annotations

import json
import math

import pytest

from timetracer.cassette import _json, storage
from timetracer.config import Compression

CASES = [
    {"a": 1, "b": [1.5, -0.0, 1e16, None, True], "c": {"z": 1, "a": 2}},
    {"big": 2**70, "neg": -(2**65)},
    {"text": "caf\u00e9 \u2603 \U0001f600", "lone": "x\ud800y"},
    {"nan": [float("nan"), float("inf"), -float("inf"), None]},
    {"events": [{"result": {"body": {"data": [{"_id": 1, "k": {"$date": "2024-01-01T00:00:00Z"}}]}}}]},
    {1: "int key", "s": "str key"},
    [],
    {},
]


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("indent", [2, None])
@pytest.mark.parametrize("value", CASES)
def test_round_trip_matches_stdlib(value: object, indent: object) -> None:
    text = _json.dumps(value, indent=indent)  # type: ignore[arg-type]
    expected = json.loads(json.dumps(value))
    assert _same(json.loads(text), expected)
    assert _same(_json.loads(text), expected)


def _text(value: object) -> _json.JsonText:
    return _json.JsonText(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def test_plain_layout_indents_the_outline_and_keeps_each_recorded_document_on_one_line() -> None:
    found = _text({"_id": 2})
    doc = {"events": [{"result": {"body": {"data": [_text({"_id": 1, "x": {"y": [1, 2]}}), found]}}}]}
    doc["events"].append({"args": {"filter": {"a": {"$in": [1]}}}, "result": {"body": {"data": found}}})
    lines = _json.dumps(doc).decode().splitlines()
    assert lines[:6] == ["{", '  "events": [', "    {", '      "result": {', '        "body": {', '          "data": [']
    assert lines[6:8] == ['            {"_id":1,"x":{"y":[1,2]}},', '            {"_id":2}']
    assert '            "$in": [' in lines  # arguments: indented all the way down
    assert '          "data": {"_id":2}' in lines


def _orjson_writes(value: object) -> bool:
    if not _json.have_orjson() or _json.has_nonfinite(value):
        return False  # orjson writes NaN as null: the fallback is the only writer
    try:
        _json._orjson.dumps(value, default=_json._as_fragment)
    except (TypeError, ValueError):  # big ints, lone surrogates, int keys: the fallback writes them
        return False
    return True


FALLBACK_CASES = [
    *[case for case in CASES if _orjson_writes(case)],
    {"events": _json.FiniteList([{"eid": 1, "data": [_text({"a": [1, {}]}), _text([])], "e": [], "o": {}}]), "n": None},
    {"deep": [[[[[[[[{"x": [1.5, "s", None, False]}]]]]]]]]},
]


@pytest.mark.skipif(not _json.have_orjson(), reason="compares with orjson's own indented text")
@pytest.mark.parametrize("value", FALLBACK_CASES)
def test_the_fallback_writer_writes_the_text_orjson_writes(value: object) -> None:
    expected = _json._orjson.dumps(value, default=_json._as_fragment, option=_json._orjson.OPT_INDENT_2)
    assert _json.dumps(value) == expected
    parts: list = []
    _json._pretty(value, 0, 2, parts.append)
    assert b"".join(parts) == expected


def test_nan_outside_the_recorded_events_is_kept() -> None:
    document = {"request": {"x": float("nan")}, "events": _json.FiniteList([{"eid": 1, "v": None}])}
    text = _json.dumps(document)
    assert b"NaN" in text and math.isnan(json.loads(text)["request"]["x"])


def test_loads_accepts_a_byte_order_mark() -> None:
    assert _json.loads(b'\xef\xbb\xbf{"a": 1}') == {"a": 1}


@pytest.mark.parametrize("value", CASES)
def test_stdlib_fallback_writes_the_same_json(value: object, monkeypatch: pytest.MonkeyPatch) -> None:
    fast = _json.dumps(value)
    monkeypatch.setattr(_json, "_orjson", None)
    slow = _json.dumps(value)
    assert _same(json.loads(slow), json.loads(fast))
    assert _same(_json.loads(slow), json.loads(json.dumps(value)))


@pytest.mark.parametrize("indent", [2, None])
@pytest.mark.parametrize("mixed", [False, True])
def test_documents_recorded_as_json_text_are_written_as_the_values_they_hold(indent: object, mixed: bool) -> None:
    values = [{"_id": 1, "at": {"$date": "2024-01-01T00:00:00Z"}}, {"s": "caf\u00e9", "l": [1, {"x": None}]}, {}]
    texts = [_json.JsonText(json.dumps(v, separators=(",", ":"), ensure_ascii=False).encode()) for v in values]
    data = [values[0], *texts[1:]] if mixed else texts
    document = {"schema_version": "1.1", "events": [{"result": {"body": {"data": data}}}], "n": [1, 2]}
    plain = {"schema_version": "1.1", "events": [{"result": {"body": {"data": values}}}], "n": [1, 2]}
    if indent is None:
        assert _json.dumps(document, indent=None) == _json.dumps(plain, indent=None)
    else:  # the plain cassette writer: the same file, each stored document on its own line
        written = storage.encode(document, Compression.NONE)
        assert written == storage.encode(plain, Compression.NONE)
        lines = written.decode().splitlines()
        for text in texts:
            assert any(line.strip().rstrip(",") == text.decode() for line in lines)
    assert [_json.materialize(t) for t in texts] == values


def _nonfinite_reference(value: object) -> bool:
    # The plain recursive definition: any float inside a dict, list or tuple that is not finite.
    if isinstance(value, _json.FiniteList):
        return False
    if type(value) is float:
        return not math.isfinite(value)
    if type(value) is dict:
        return any(_nonfinite_reference(v) for v in value.values())
    if type(value) in (list, tuple):
        return any(_nonfinite_reference(v) for v in value)
    return False


def test_has_nonfinite_finds_every_nan_and_infinity_and_nothing_else() -> None:
    import random

    rng = random.Random(7)
    leaves = [1.5, -0.0, 0.0, 1e308, -1e-308, float("nan"), float("inf"), -float("inf"), None, 0, "nan", True]

    def value(depth: int) -> object:
        kind = rng.randrange(6 if depth < 4 else 1)
        if kind == 0 or depth >= 4:
            return rng.choice(leaves)
        items = [value(depth + 1) for _ in range(rng.randint(0, 4))]
        if kind == 1:
            return {f"k{i}": item for i, item in enumerate(items)}
        if kind == 2:
            return tuple(items)
        if kind == 3:
            return _json.FiniteList(items)  # never searched: recorded values are marked already
        return items

    values = [value(0) for _ in range(3000)]
    found = [_json.has_nonfinite(v) for v in values]
    assert found == [_nonfinite_reference(v) for v in values]
    assert 300 < sum(found) < 2700  # both answers are common
    deep: object = float("nan")
    for _ in range(5000):  # deeper than the recursion limit
        deep = [{"a": deep}]
    assert _json.has_nonfinite(deep) and not _json.has_nonfinite([[{"a": [1.0, None]}]] * 3)
