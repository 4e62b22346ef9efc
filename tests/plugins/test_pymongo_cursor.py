"""Find and aggregate cursors: real PyMongo cursors that record what the app reads and replay it.

The query a cursor is matched on is the one in force at its first fetch, so options chained after
``find()`` count. Partial reads replay exactly as far as they were recorded, never silently less.
"""

from __future__ import annotations

from typing import Any, Callable, List

import pymongo
import pytest
from pymongo import monitoring
from pymongo.collation import Collation
from pymongo.command_cursor import CommandCursor
from pymongo.cursor import Cursor

from timetracer.errors import ReplayMismatchError

from ._support import Tape, assert_same, record_then_replay

Work = Callable[[Any], Any]


@pytest.fixture
def items_db(fresh_db: Any) -> Any:
    """A database whose ``items`` hold 55 documents ``{"_id": i, "i": i, "g": i % 5}``."""
    fresh_db.items.insert_many([{"_id": i, "i": i, "g": i % 5, "s": f"s{i:02d}"} for i in range(55)])
    return fresh_db


class CommandCounter(monitoring.CommandListener):
    """Counts the commands a live client sends (PyMongo's own command monitoring)."""

    def __init__(self) -> None:
        self.names: List[str] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.names.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


CHAINS = [
    pytest.param(lambda db: db.items.find({"g": 1}).sort("i", -1), id="sort"),
    pytest.param(lambda db: db.items.find().sort("i").skip(50), id="skip"),
    pytest.param(lambda db: db.items.find().sort("i").limit(4), id="limit"),
    pytest.param(lambda db: db.items.find({"g": 2}).batch_size(3), id="batch_size"),
    pytest.param(lambda db: db.items.find({"g": 3}).hint("_id_"), id="hint-name"),
    pytest.param(lambda db: db.items.find({"g": 3}).hint([("_id", 1)]), id="hint-keys"),
    pytest.param(
        lambda db: db.items.find({"s": "S01"}).collation(Collation("en", strength=2)), id="collation"
    ),
    pytest.param(lambda db: db.items.find({"g": 4}).max_time_ms(10_000), id="max_time_ms"),
    pytest.param(lambda db: db.items.find({"g": 4}).comment("from a test"), id="comment"),
    pytest.param(lambda db: db.items.find().where("this.i > 51"), id="where"),
    pytest.param(lambda db: db.items.find({}, {"_id": 0, "s": 1}).sort("s", -1).limit(3), id="projection"),
    pytest.param(
        lambda db: (
            db.items.find({"g": {"$in": [1, 2]}}, {"_id": 0})
            .sort([("g", -1), ("i", 1)])
            .skip(2)
            .limit(6)
            .batch_size(2)
            .comment("all")
            .max_time_ms(5000)
        ),
        id="everything",
    ),
]


@pytest.mark.parametrize("chain", CHAINS)
def test_chained_cursor_options_record_and_replay(
    chain: Work, items_db: Any, dead_client: Callable[..., Any], tape: Tape
) -> None:
    live, replayed = record_then_replay(tape, items_db, dead_client, lambda db: list(chain(db)))
    assert live, "the chain should select something"
    assert_same(replayed, live)
    assert tape.methods() == ["FIND"]


def test_a_traced_cursor_is_a_real_pymongo_cursor(
    items_db: Any, dead_client: Callable[..., Any], tape: Tape
) -> None:
    with tape.record():
        cursor = items_db.items.find({"g": 0})
        assert isinstance(cursor, Cursor)
        live = list(cursor)
    with tape.replay():
        cursor = dead_client()[items_db.name].items.find({"g": 0})
        assert isinstance(cursor, Cursor)
        assert cursor.collection.full_name == items_db.items.full_name
        assert_same(list(cursor), live)


def test_iteration_across_get_more_batches(
    items_db: Any, live_client: Callable[..., Any], dead_client: Callable[..., Any], tape: Tape
) -> None:
    counter = CommandCounter()
    watched = live_client(event_listeners=[counter])[items_db.name]
    with tape.record():
        live = list(watched.items.find().sort("i").batch_size(10))
    assert [d["i"] for d in live] == list(range(55))
    assert counter.names.count("getMore") >= 5  # really read in batches of 10
    assert tape.methods() == ["FIND"]  # yet one call: the find

    with tape.replay():
        replayed = list(dead_client()[items_db.name].items.find().sort("i").batch_size(10))
    assert_same(replayed, live)


def test_next_reads_one_document_at_a_time(
    items_db: Any, dead_client: Callable[..., Any], tape: Tape
) -> None:
    def work(db: Any) -> Any:
        cursor = db.items.find({"g": 1}).sort("i")
        first, second = next(cursor), cursor.next()
        return first, second, cursor.alive

    live, replayed = record_then_replay(tape, items_db, dead_client, work)
    assert [live[0]["i"], live[1]["i"]] == [1, 6]
    assert_same(replayed, live)


@pytest.mark.skipif(not hasattr(Cursor, "to_list"), reason="Cursor.to_list() is new in PyMongo 4.9")
@pytest.mark.parametrize("length", [pytest.param(None, id="all"), pytest.param(4, id="length-4")])
def test_to_list(length: Any, items_db: Any, dead_client: Callable[..., Any], tape: Tape) -> None:
    def work(db: Any) -> Any:
        cursor = db.items.find({"g": 2}).sort("i").batch_size(3)
        return cursor.to_list() if length is None else cursor.to_list(length)

    live, replayed = record_then_replay(tape, items_db, dead_client, work)
    assert len(live) == (11 if length is None else length)
    assert_same(replayed, live)


def test_close_and_alive(items_db: Any, dead_client: Callable[..., Any], tape: Tape) -> None:
    def work(db: Any) -> Any:
        cursor = db.items.find().sort("i").batch_size(5)
        seen = [cursor.alive]
        docs = [next(cursor) for _ in range(3)]
        seen.append(cursor.alive)
        cursor.close()
        seen.append(cursor.alive)
        docs.extend(cursor)  # PyMongo still yields what it had buffered, then stops
        return seen, docs

    live, replayed = record_then_replay(tape, items_db, dead_client, work)
    assert live[0][:2] == [True, True]
    assert 3 <= len(live[1]) < 55
    assert_same(replayed, live)


def test_alive_is_false_once_exhausted(items_db: Any, dead_client: Callable[..., Any], tape: Tape) -> None:
    def work(db: Any) -> Any:
        cursor = db.items.find({"g": 4}).batch_size(4)
        docs = list(cursor)
        return docs, cursor.alive

    live, replayed = record_then_replay(tape, items_db, dead_client, work)
    assert live[1] is False
    assert_same(replayed, live)


def test_rewind_reads_again_as_a_second_call(
    items_db: Any, dead_client: Callable[..., Any], tape: Tape
) -> None:
    def work(db: Any) -> Any:
        cursor = db.items.find({"g": 3}).sort("i", -1)
        first = list(cursor)
        second = list(cursor.rewind())
        return first, second

    live, replayed = record_then_replay(tape, items_db, dead_client, work)
    assert live[0] == live[1] and len(live[0]) == 11
    assert tape.methods() == ["FIND", "FIND"]
    assert_same(replayed, live)


def test_rewind_after_a_write_sees_the_recorded_second_answer(
    items_db: Any, dead_client: Callable[..., Any], tape: Tape
) -> None:
    def work(db: Any) -> Any:
        cursor = db.items.find({"g": 3}, {"_id": 1}).sort("i")
        first = list(cursor)
        db.items.delete_one({"_id": 3})
        return first, list(cursor.rewind())

    live, replayed = record_then_replay(tape, items_db, dead_client, work)
    assert len(live[1]) == len(live[0]) - 1
    assert_same(replayed, live)


def test_clone_is_an_independent_cursor(items_db: Any, dead_client: Callable[..., Any], tape: Tape) -> None:
    def work(db: Any) -> Any:
        cursor = db.items.find({"g": 0}).sort("i").limit(5)
        head = next(cursor)
        copy = cursor.clone()
        assert isinstance(copy, Cursor)
        return head, list(copy), list(cursor)

    live, replayed = record_then_replay(tape, items_db, dead_client, work)
    assert len(live[1]) == 5 and len(live[2]) == 4
    assert tape.methods() == ["FIND", "FIND"]
    assert_same(replayed, live)


@pytest.mark.parametrize(
    "work",
    [
        pytest.param(lambda db: db.items.find().sort("i")[2], id="index"),
        pytest.param(lambda db: db.items.find({"g": 1}).sort("i", -1)[0], id="index-0"),
        pytest.param(lambda db: list(db.items.find().sort("i")[10:13]), id="slice"),
    ],
)
def test_indexing_and_slicing(work: Work, items_db: Any, dead_client: Callable[..., Any], tape: Tape) -> None:
    live, replayed = record_then_replay(tape, items_db, dead_client, work)
    assert live
    assert_same(replayed, live)


def test_index_past_the_end_raises_index_error_in_both(
    items_db: Any, dead_client: Callable[..., Any], tape: Tape
) -> None:
    def work(db: Any) -> Any:
        with pytest.raises(IndexError) as caught:
            db.items.find({"g": 1})[500]
        return str(caught.value)

    live, replayed = record_then_replay(tape, items_db, dead_client, work)
    assert replayed == live


def test_with_block_closes_the_cursor(items_db: Any, dead_client: Callable[..., Any], tape: Tape) -> None:
    def work(db: Any) -> Any:
        with db.items.find({"g": 2}).sort("i").batch_size(2) as cursor:
            docs = [next(cursor), next(cursor), next(cursor)]
        return docs, cursor.alive, list(cursor)

    live, replayed = record_then_replay(tape, items_db, dead_client, work)
    assert len(live[0]) == 3 and len(live[2]) < 8  # closed: no more batches fetched
    assert_same(replayed, live)


def test_the_query_is_the_one_chained_before_the_first_fetch(
    items_db: Any, dead_client: Callable[..., Any], tape: Tape
) -> None:
    def work(db: Any) -> Any:
        cursor = db.items.find({"g": 1})
        cursor.sort("i", -1)  # chained after find(), before the first fetch
        cursor.skip(1)
        cursor.limit(3)
        return list(cursor)

    live, replayed = record_then_replay(tape, items_db, dead_client, work)
    assert [d["i"] for d in live] == [46, 41, 36]
    (event,) = tape.events
    assert event["args"] == {"filter": {"g": 1}, "sort": [["i", -1]], "skip": 1, "limit": 3}
    assert_same(replayed, live)

    with tape.replay():
        unsorted = dead_client()[items_db.name].items.find({"g": 1}).skip(1).limit(3)
        with pytest.raises(ReplayMismatchError):
            list(unsorted)


def test_options_changed_after_the_first_fetch_are_refused_like_pymongo(
    items_db: Any, dead_client: Callable[..., Any], tape: Tape
) -> None:
    def work(db: Any) -> Any:
        cursor = db.items.find({"g": 1})
        first = next(cursor)
        with pytest.raises(pymongo.errors.InvalidOperation):
            cursor.sort("i")
        return first

    live, replayed = record_then_replay(tape, items_db, dead_client, work)
    assert_same(replayed, live)


# -- partial reads -----------------------------------------------------------------------------


def _read(db: Any, count: int) -> List[Any]:
    cursor = db.items.find().sort("i").batch_size(10)
    return [next(cursor) for _ in range(count)]


@pytest.mark.parametrize("replayed_count", [pytest.param(15, id="same"), pytest.param(7, id="fewer")])
def test_a_partial_read_replays_up_to_what_was_recorded(
    replayed_count: int, items_db: Any, dead_client: Callable[..., Any], tape: Tape
) -> None:
    with tape.record():
        live = _read(items_db, 15)
    (event,) = tape.events
    assert len(event["result"]["body"]["data"]) == 15  # what the app read, not the whole batch
    assert event["result"]["exhausted"] is False

    with tape.replay():
        replayed = _read(dead_client()[items_db.name], replayed_count)
    assert_same(replayed, live[:replayed_count])


def test_reading_past_a_partial_recording_raises_instead_of_ending(
    items_db: Any, dead_client: Callable[..., Any], tape: Tape
) -> None:
    with tape.record():
        _read(items_db, 15)

    with tape.replay():
        cursor = dead_client()[items_db.name].items.find().sort("i").batch_size(10)
        for _ in range(15):
            next(cursor)
        with pytest.raises(ReplayMismatchError) as caught:
            next(cursor)
    message = str(caught.value)
    assert "FIND" in message and items_db.items.full_name in message
    assert "15" in message and str(tape.path) in message


def test_list_of_a_partially_recorded_cursor_raises(
    items_db: Any, dead_client: Callable[..., Any], tape: Tape
) -> None:
    with tape.record():
        _read(items_db, 15)
    with tape.replay():
        with pytest.raises(ReplayMismatchError):
            list(dead_client()[items_db.name].items.find().sort("i").batch_size(10))


def test_a_fully_read_cursor_ends_normally_in_replay(
    items_db: Any, dead_client: Callable[..., Any], tape: Tape
) -> None:
    def work(db: Any) -> Any:
        cursor = db.items.find({"g": 0}).batch_size(4)
        docs = list(cursor)
        with pytest.raises(StopIteration):
            next(cursor)
        return docs

    live, replayed = record_then_replay(tape, items_db, dead_client, work)
    assert tape.events[0]["result"]["exhausted"] is True
    assert_same(replayed, live)


def test_an_empty_result_replays_empty(items_db: Any, dead_client: Callable[..., Any], tape: Tape) -> None:
    live, replayed = record_then_replay(
        tape, items_db, dead_client, lambda db: list(db.items.find({"g": 99}))
    )
    assert live == []
    assert_same(replayed, live)


# -- explain, distinct on a cursor ----------------------------------------------------------------


def test_explain_records_and_replays(items_db: Any, dead_client: Callable[..., Any], tape: Tape) -> None:
    live, replayed = record_then_replay(
        tape, items_db, dead_client, lambda db: db.items.find({"g": 1}).sort("i").explain()
    )
    assert isinstance(live, dict)
    assert tape.methods() == ["EXPLAIN"]
    assert_same(replayed, live)


def test_cursor_distinct_is_recorded_as_distinct(
    items_db: Any, dead_client: Callable[..., Any], tape: Tape
) -> None:
    live, replayed = record_then_replay(
        tape, items_db, dead_client, lambda db: sorted(db.items.find({"i": {"$lt": 12}}).distinct("g"))
    )
    assert live == [0, 1, 2, 3, 4]
    assert tape.methods() == ["DISTINCT"]
    assert_same(replayed, live)


# -- aggregate -------------------------------------------------------------------------------------

PIPELINE = [{"$match": {"g": {"$lt": 3}}}, {"$sort": {"i": 1}}, {"$project": {"_id": 0, "i": 1, "g": 1}}]


def test_aggregate_returns_a_real_command_cursor_in_replay(
    items_db: Any, dead_client: Callable[..., Any], tape: Tape
) -> None:
    with tape.record():
        cursor = items_db.items.aggregate(PIPELINE, batchSize=5)
        assert isinstance(cursor, CommandCursor)
        live = list(cursor)
    assert len(live) == 33

    with tape.replay():
        cursor = dead_client()[items_db.name].items.aggregate(PIPELINE, batchSize=5)
        assert isinstance(cursor, CommandCursor)
        replayed = list(cursor)
        assert cursor.alive is False
    assert_same(replayed, live)


def test_aggregate_partial_read_replays_then_raises(
    items_db: Any, dead_client: Callable[..., Any], tape: Tape
) -> None:
    with tape.record():
        cursor = items_db.items.aggregate(PIPELINE, batchSize=5)
        live = [next(cursor) for _ in range(7)]

    with tape.replay():
        cursor = dead_client()[items_db.name].items.aggregate(PIPELINE, batchSize=5)
        assert_same([next(cursor) for _ in range(7)], live)
        with pytest.raises(ReplayMismatchError):
            next(cursor)


def test_aggregate_with_a_with_block_and_try_next(
    items_db: Any, dead_client: Callable[..., Any], tape: Tape
) -> None:
    def work(db: Any) -> Any:
        with db.items.aggregate([{"$match": {"g": 4}}, {"$sort": {"i": 1}}]) as cursor:
            return [cursor.try_next(), cursor.next(), *cursor]

    live, replayed = record_then_replay(tape, items_db, dead_client, work)
    assert len(live) == 11
    assert_same(replayed, live)
