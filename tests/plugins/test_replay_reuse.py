"""One cassette replayed many times in one process (tests sharing a cassette, a replayed request
served again): every replay gives exactly what was recorded, whatever the app did to the documents
an earlier replay gave it.

From a result's second use on, replay keeps its documents and hands out copies of their containers
(:mod:`timetracer.plugins.pymongo._rebuild`); these tests check that through real PyMongo, against
the test server when recording and a port that never answers when replaying.
"""

from __future__ import annotations

import datetime
from typing import Any, Callable, Dict, List

import pytest
from bson import Decimal128, ObjectId, Regex
from bson.binary import Binary
from bson.int64 import Int64

from ._differential import assert_identical
from ._support import Tape, change_everything
from .conftest import Blackhole

_EPOCH = datetime.datetime(2024, 1, 1)


def _documents() -> List[Dict[str, Any]]:
    docs = []
    for i in range(30):
        doc: Dict[str, Any] = {
            "_id": ObjectId(bytes([i]) * 12),
            "i": i,
            "at": _EPOCH + datetime.timedelta(days=i, milliseconds=7 * i),
            "big": Int64(2**40 + i),
            "price": Decimal128(f"{i}.25"),
            "tags": ["a", "b", str(i)],
            "history": [{"n": j, "when": _EPOCH + datetime.timedelta(hours=j)} for j in range(3)],
            "deep": {"list": [[i, {"x": [i]}], []], "empty": {}},
        }
        # Values the app could change in place: the documents holding them are never kept.
        if i % 7 == 3:
            doc["pattern"] = Regex("^a", "i")
        if i % 7 == 5:
            doc["blob"] = Binary(b"\x01\x02", 5)
        docs.append(doc)
    return docs


def _reads(db: Any) -> List[Any]:
    items = db.items
    return [
        list(items.find({}).sort("i", 1).batch_size(7)),
        list(items.aggregate([{"$match": {"i": {"$gte": 10}}}, {"$sort": {"i": -1}}])),
        items.find_one({"i": 4}),
        list(items.find({"i": {"$lt": 5}}, {"history": 1, "deep": 1}).sort("i", 1)),
    ]


@pytest.mark.parametrize(
    "codec",
    [
        pytest.param({}, id="default"),
        pytest.param({"uuidRepresentation": "standard"}, id="standard"),
        pytest.param({"tz_aware": True}, id="tz_aware"),
    ],
)
def test_a_cassette_replayed_again_and_again_gives_the_recording_every_time(
    codec: Dict[str, Any],
    fresh_db: Any,
    live_client: Callable[..., Any],
    dead_client: Callable[..., Any],
    blackhole: Blackhole,
    tape: Tape,
) -> None:
    fresh_db.items.insert_many(_documents())
    client = live_client(**codec)
    with tape.record():
        live = _reads(client[fresh_db.name])
    # What the app gets live, in objects of its own (a deep copy would also copy each datetime's
    # tzinfo, which PyMongo < 4.9 shows by address).
    recorded = _reads(client[fresh_db.name])
    assert_identical(recorded, live, "the same reads, live again")
    change_everything(live)  # the recording is not the app's objects either

    for use in range(1, 6):
        with tape.replay():
            replayed = _reads(dead_client(**codec)[fresh_db.name])
        assert_identical(replayed, recorded, f"replay {use}")
        change_everything(replayed)
    blackhole.assert_untouched()


def test_replays_with_other_codec_options_share_a_cassette_and_each_get_their_own_types(
    fresh_db: Any, live_client: Callable[..., Any], dead_client: Callable[..., Any], tape: Tape
) -> None:
    fresh_db.items.insert_many(_documents())
    with tape.record():
        live = _reads(live_client()[fresh_db.name])
    expected = {
        "default": live,
        "aware": _reads(live_client(tz_aware=True)[fresh_db.name]),
        "standard": _reads(live_client(uuidRepresentation="standard")[fresh_db.name]),
    }
    options = {"default": {}, "aware": {"tz_aware": True}, "standard": {"uuidRepresentation": "standard"}}
    for name in ["default", "default", "aware", "standard", "default", "standard", "aware", "default"]:
        with tape.replay():
            replayed = _reads(dead_client(**options[name])[fresh_db.name])
        assert_identical(replayed, expected[name], name)
        change_everything(replayed)
    assert expected["aware"][0][0]["at"].tzinfo is not None  # the option sets really differ
