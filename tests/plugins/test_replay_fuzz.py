"""Fuzzing real recorded cassettes: replay fails only with CassetteError, ReplayMismatchError or
the recorded error, never with an unrelated exception from deep inside replay.

A scenario touching most operations (documents with ObjectIds, dates, decimals, 64-bit ints;
cursors, aggregation, write results, a recorded DuplicateKeyError) is recorded once against the
test server. Hypothesis then mutates that cassette (a field removed, set to null or to another
type, ``error`` made a list, an ``$oid`` that is not hex, an integer too large for BSON, a date
that is not a date, a lone surrogate, a value nested 600 deep, ...) and replays the scenario from
the mutated file with a client on a dead address. Derandomized, so every run tries the same
:data:`EXAMPLES` cases.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import pytest
from bson import Decimal128, Int64, ObjectId
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymongo.errors import DuplicateKeyError, PyMongoError

from timetracer import api
from timetracer.config import TraceConfig
from timetracer.errors import CassetteError, ReplayMismatchError

EXAMPLES = 600

_OID = ObjectId("65a1b2c3d4e5f60718293a4b")
_WHEN = datetime.datetime(2026, 1, 2, 3, 4, 5, 678000)


def scenario(db: Any) -> List[Any]:
    """What a request handler does; returns everything the app saw."""
    seen: List[Any] = []
    db.items.insert_many(
        [
            {"_id": _OID, "sku": "a", "price": Decimal128("9.99"), "at": _WHEN, "n": Int64(2**40)},
            {"_id": "b", "sku": "b", "price": Decimal128("1.50"), "tags": ["x", "y"], "n": 3},
        ]
    )
    seen.append(db.items.find_one({"_id": _OID}))
    seen.append(list(db.items.find({}, {"sku": 1, "n": 1}).sort("sku", 1)))
    seen.append(db.items.count_documents({"n": {"$gte": 1}}))
    seen.append(list(db.items.aggregate([{"$group": {"_id": None, "total": {"$sum": "$n"}}}])))
    seen.append(db.items.update_one({"_id": "b"}, {"$set": {"n": 4}}).raw_result)
    seen.append(db.items.distinct("sku"))
    seen.append(db.items.find_one_and_update({"_id": "b"}, {"$inc": {"n": 1}}))
    seen.append(db.items.insert_one({"sku": "c"}).inserted_id)
    try:
        db.items.insert_one({"_id": "b"})
    except DuplicateKeyError as exc:
        seen.append(("DuplicateKeyError", exc.code))
    seen.append(db.items.delete_many({"sku": "a"}).deleted_count)
    return seen


# -- mutations ----------------------------------------------------------------------------------

_NESTED_LIST: Any = []
for _ in range(600):
    _NESTED_LIST = [_NESTED_LIST]
_NESTED_DICT: Any = {}
for _ in range(600):
    _NESTED_DICT = {"a": _NESTED_DICT}

REPLACEMENTS: List[Any] = [
    None,
    "x",
    "",
    0,
    -1,
    1.5,
    float("nan"),
    2**64,
    -(2**63) - 1,
    10**400,
    True,
    [],
    {},
    [1, "two"],
    {"a": 1},
    ["x"],
    "\ud800",
    {"k\udfff": 1},
    {"$oid": "zz"},
    {"$oid": "0" * 23},
    {"$date": "not a date"},
    {"$date": {"$numberLong": "x"}},
    {"$date": 10**30},
    {"$numberLong": "9" * 30},
    {"$numberInt": "1.5"},
    {"$numberDouble": "bogus"},
    {"$numberDecimal": "abc"},
    {"$binary": {"base64": "!!", "subType": "00"}},
    {"$binary": {"base64": "AA==", "subType": "zz"}},
    {"$uuid": "nope"},
    {"$regularExpression": {"pattern": "(", "options": "q"}},
    {"$timestamp": {"t": -1, "i": "x"}},
    {"$code": 5},
    {"$symbol": 1},
    {"$minKey": 2},
    {"$dbPointer": "x"},
    {"$foo": 1},
    _NESTED_LIST,
    _NESTED_DICT,
]


def _paths(node: Any, prefix: Tuple[Any, ...] = ()) -> List[Tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found.extend(_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(_paths(value, (*prefix, index)))
    return found


def mutate(document: Dict[str, Any], path: Tuple[Any, ...], action: str, value: Any) -> Any:
    """A deep copy of ``document`` with ``action`` applied at ``path``."""
    copy = json.loads(json.dumps(document))
    if not path:
        return value if action == "set" else copy
    parent = copy
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if action == "delete":
        del parent[last]
    elif action == "add-key" and isinstance(parent[last], dict):
        parent[last]["error" if not parent[last].get("error") else "extra"] = value
    else:
        parent[last] = value
    return copy


def test_mutated_cassettes_fail_only_with_cassette_errors(
    tmp_path: Path,
    live_client: Callable[..., Any],
    dead_client: Callable[..., Any],
    mongo_client: Any,
) -> None:
    db_name = "tt_fuzz"
    mongo_client.drop_database(db_name)
    recorded = tmp_path / "recorded.json"
    config = TraceConfig.from_env({}, mode="record")
    with api.record(recorded, config=config):
        live = scenario(live_client()[db_name])
    mongo_client.drop_database(db_name)
    original = json.loads(recorded.read_text(encoding="utf-8"))
    assert len(original["events"]) == 11 and ("DuplicateKeyError", 11000) in live
    paths = _paths(original)
    replay_config = TraceConfig.from_env({}, mode="replay")

    # The unmutated cassette replays to exactly what the app saw live.
    with api.replay(recorded, config=replay_config):
        client = dead_client()
        assert repr(scenario(client[db_name])) == repr(live)
        client.close()

    outcomes: Dict[str, int] = {}
    target = tmp_path / "mutated.json"

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(
        path=st.sampled_from(paths),
        action=st.sampled_from(["set", "set", "delete", "add-key"]),
        value=st.sampled_from(REPLACEMENTS),
    )
    def replay_mutant(path: Tuple[Any, ...], action: str, value: Any) -> None:
        if action == "delete" and not path:
            action = "set"
        mutant = mutate(original, path, action, value)
        target.write_text(json.dumps(mutant), encoding="utf-8")  # ASCII: lone surrogates survive
        client = None
        try:
            with api.replay(target, config=replay_config):
                client = dead_client()
                scenario(client[db_name])
            outcome = "replayed"
        except CassetteError as exc:
            assert str(target) in str(exc), str(exc)
            outcome = "CassetteError"
        except ReplayMismatchError:
            outcome = "ReplayMismatchError"
        except PyMongoError as exc:
            # Only the recorded error may come out, as recorded (or as mutated in the cassette).
            assert getattr(exc, "__timetracer_recorded__", False), f"{type(exc).__name__}: {exc}"
            outcome = "recorded error"
        finally:
            if client is not None:
                try:
                    client.close()
                except Exception as exc:
                    pytest.fail(f"closing a replay client raised {type(exc).__name__}: {exc}")
        outcomes[outcome] = outcomes.get(outcome, 0) + 1

    replay_mutant()
    print(f"{sum(outcomes.values())} mutated cassettes replayed: {outcomes}")
    assert sum(outcomes.values()) >= EXAMPLES // 2
    assert outcomes.get("CassetteError", 0) > 0
