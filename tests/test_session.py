"""Sessions (event numbering, timing, threads, finalizers, the cassette built) and replay matching."""

from __future__ import annotations

import logging
import re
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

import timetracer
from timetracer import session as session_module
from timetracer.cassette import SCHEMA_VERSION, read_cassette, write_cassette
from timetracer.config import Compression, Mode, TraceConfig
from timetracer.errors import ReplayMismatchError, TimeTracerError
from timetracer.hashing import body_hash
from timetracer.session import Session

ISO_UTC_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


def signature(method: str, args: Dict[str, Any], url: str = "myapp.users") -> Dict[str, Any]:
    """A spec-like signature: the body hash is the hash of the call's arguments."""
    return {
        "lib": "pymongo",
        "method": method,
        "url": url,
        "query": {"filter_keys": sorted(args.get("filter", {}))},
        "body_hash": body_hash(args),
    }


def result(data: Any) -> Dict[str, Any]:
    return {"status": 0, "body": {"captured": True, "data": data}}


def recorder(tmp_path: Optional[Path] = None, **config: Any) -> Session:
    path = tmp_path / "GET__users_123.json" if tmp_path is not None else None
    return Session(TraceConfig(mode=Mode.RECORD, **config), Mode.RECORD, cassette_path=path)


def record(session: Session, method: str, args: Dict[str, Any], data: Any, url: str = "myapp.users") -> None:
    event = session.start_event(signature(method, args, url), args)
    session.end_event(event, result(data))


# -- construction -------------------------------------------------------------------------------------


def test_off_mode_needs_no_session() -> None:
    with pytest.raises(ValueError, match="off"):
        Session(TraceConfig(), Mode.OFF)


def test_replay_needs_a_cassette() -> None:
    with pytest.raises(ValueError, match="cassette"):
        Session(TraceConfig(), Mode.REPLAY)


def test_record_session_flags() -> None:
    session = recorder()
    assert session.recording and not session.replaying
    assert session.replayer is None
    assert re.fullmatch(r"[0-9a-f]{16}", session.id)
    assert recorder().id != session.id


# -- events -------------------------------------------------------------------------------------------


def test_eids_follow_call_order() -> None:
    session = recorder()
    events = [session.start_event(signature("FIND_ONE", {"filter": {"_id": i}}), None) for i in range(3)]
    assert [e["eid"] for e in events] == [1, 2, 3]
    # Ended out of order: numbering still follows the starts.
    for event in reversed(events):
        session.end_event(event, result(None))
    assert [e["eid"] for e in session.to_cassette()["events"]] == [1, 2, 3]


def test_event_shape() -> None:
    session = recorder()
    args = {"filter": {"_id": "123"}}
    event = session.start_event(signature("FIND_ONE", args), args)
    session.end_event(event, result({"_id": "123"}))
    assert event["event_type"] == "db.query"
    assert event["signature"]["method"] == "FIND_ONE"
    assert event["args"] == args
    assert event["result"] == result({"_id": "123"})
    assert "args" not in session.start_event(signature("FIND_ONE", {}), None)


def test_offsets_non_decreasing_and_durations_non_negative() -> None:
    session = recorder()
    for i in range(50):
        event = session.start_event(signature("FIND_ONE", {"filter": {"_id": i}}), None)
        if i % 10 == 0:
            time.sleep(0.002)
        session.end_event(event, result(i))
    events = session.to_cassette()["events"]
    starts = [e["start_offset_ms"] for e in events]
    assert starts == sorted(starts)
    assert starts[0] >= 0
    assert all(e["duration_ms"] >= 0 for e in events)
    assert any(e["duration_ms"] >= 1.0 for e in events)  # the sleeps were measured
    assert starts[-1] > starts[0]


def test_duration_measures_the_call() -> None:
    session = recorder()
    event = session.start_event(signature("FIND_ONE", {}), None)
    time.sleep(0.02)
    session.end_event(event, result(None))
    assert 15 <= event["duration_ms"] < 5000


def _clock(monkeypatch: pytest.MonkeyPatch, readings: List[int]) -> None:
    ticks = iter(readings)
    monkeypatch.setattr(session_module, "_now_ns", lambda: next(ticks))


def test_duration_is_never_negative_after_rounding(monkeypatch: pytest.MonkeyPatch) -> None:
    # The start is rounded to whole microseconds, possibly up; an end a hair later is not below it.
    _clock(monkeypatch, [0, 5_000_600, 5_000_610])
    session = recorder()
    event = session.start_event(signature("FIND_ONE", {}), None)
    assert event["start_offset_ms"] == 5.001
    session.end_event(event, result(None))
    assert event["duration_ms"] == 0.0
    assert str(event["duration_ms"]) == "0.0"  # not "-0.0" or "-0.001"


def test_offsets_are_whole_microseconds_written_with_three_decimals(monkeypatch: pytest.MonkeyPatch) -> None:
    import random

    rng = random.Random(20261202)
    starts = [0, 499, 500, 1_499, 1_500, 2_675_000, 999_999_999_499, 10**15 + 500]
    starts += [rng.randrange(0, 10**13) for _ in range(20_000)]
    for start in starts:
        end = start + rng.choice([0, 1, 499, 500, 501, rng.randrange(0, 10**9)])
        t0 = rng.randrange(0, 10**12)
        _clock(monkeypatch, [t0, t0 + start, t0 + end])
        session = recorder()
        event = session.start_event(signature("FIND_ONE", {}), None)
        session.end_event(event, result(None))
        start_us, end_us = (start + 500) // 1000, (end + 500) // 1000  # half up
        assert event["start_offset_ms"] == start_us / 1000, start
        assert event["duration_ms"] == (end_us - start_us) / 1000 >= 0.0, (start, end)
        for value in (event["start_offset_ms"], event["duration_ms"]):
            assert float(f"{value:.3f}") == value  # exactly the 3-decimal number it shows


def test_threads_get_unique_consecutive_eids() -> None:
    session = recorder()
    threads_count, per_thread = 8, 200
    barrier = threading.Barrier(threads_count)
    seen: Dict[int, List[int]] = {}

    def work(index: int) -> None:
        barrier.wait()
        mine = []
        for i in range(per_thread):
            event = session.start_event(signature("FIND_ONE", {"filter": {"t": index, "i": i}}), None)
            session.end_event(event, result(i))
            mine.append(event["eid"])
        seen[index] = mine

    threads = [threading.Thread(target=work, args=(n,)) for n in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    all_eids = [eid for mine in seen.values() for eid in mine]
    assert sorted(all_eids) == list(range(1, threads_count * per_thread + 1))
    for mine in seen.values():
        assert mine == sorted(mine)  # each thread's calls are numbered in its own order
    events = session.to_cassette()["events"]
    assert [e["eid"] for e in events] == list(range(1, 1601))
    starts = [e["start_offset_ms"] for e in events]
    assert starts == sorted(starts)  # eid order and time order agree across threads


def test_eid_order_matches_start_order_when_threads_race(monkeypatch: pytest.MonkeyPatch) -> None:
    # Widen the gap between reading the clock and taking a number: a thread preempted there
    # must not end up with a later eid but an earlier start than another thread's event.
    session = recorder()
    real_offset = session.offset_ms

    def slow_offset() -> float:
        value = real_offset()
        time.sleep(0.0005)
        return value

    monkeypatch.setattr(session, "offset_ms", slow_offset)
    barrier = threading.Barrier(4)

    def work() -> None:
        barrier.wait()
        for _ in range(25):
            session.start_event(signature("FIND_ONE", {}), None)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    starts = [e["start_offset_ms"] for e in session.events]
    assert len(starts) == 100
    assert starts == sorted(starts)


def test_events_property_is_a_sorted_copy() -> None:
    session = recorder()
    record(session, "FIND_ONE", {"filter": {"_id": 1}}, 1)
    events = session.events
    events.clear()
    assert len(session.events) == 1


def test_events_without_result_are_left_out() -> None:
    session = recorder()
    record(session, "FIND_ONE", {"filter": {"_id": 1}}, 1)
    session.start_event(signature("FIND", {"filter": {}}), None)  # never ended
    record(session, "COUNT_DOCUMENTS", {"filter": {}}, 3)
    events = session.to_cassette()["events"]
    assert [e["eid"] for e in events] == [1, 3]
    assert all("result" in e for e in events)


# -- finalizers ---------------------------------------------------------------------------------------


def test_finalizers_run_once_before_the_cassette_is_built() -> None:
    session = recorder()
    calls: List[str] = []
    cursor_event = session.start_event(signature("FIND", {"filter": {}}), None)

    def finish_cursor() -> None:
        calls.append("cursor")
        session.end_event(cursor_event, result([{"_id": 1}, {"_id": 2}]))

    session.on_finish(finish_cursor)
    session.on_finish(lambda: calls.append("second"))
    first = session.to_cassette()
    assert calls == ["cursor", "second"]
    assert first["events"][0]["result"]["body"]["data"] == [{"_id": 1}, {"_id": 2}]
    second = session.to_cassette()
    assert calls == ["cursor", "second"]  # not run again
    assert second["events"] == first["events"]


def test_finalizer_registered_by_a_finalizer_runs() -> None:
    session = recorder()
    calls: List[str] = []

    def outer() -> None:
        calls.append("outer")
        session.on_finish(lambda: calls.append("inner"))

    session.on_finish(outer)
    session.to_cassette()
    assert calls == ["outer", "inner"]
    session.to_cassette()
    assert calls == ["outer", "inner"]


def test_failing_finalizer_is_logged_and_the_rest_still_run(caplog: pytest.LogCaptureFixture) -> None:
    session = recorder()
    record(session, "FIND_ONE", {"filter": {"_id": 1}}, 1)
    calls: List[str] = []

    def broken() -> None:
        raise RuntimeError("cursor encoding failed")

    session.on_finish(broken)
    session.on_finish(lambda: calls.append("after"))
    with caplog.at_level(logging.ERROR, logger="timetracer"):
        document = session.to_cassette()
    assert calls == ["after"]
    assert len(document["events"]) == 1
    assert any("finalizer" in r.getMessage() and r.exc_info for r in caplog.records)


# -- the cassette document ----------------------------------------------------------------------------


def test_cassette_document(tmp_path: Path) -> None:
    session = Session(
        TraceConfig(mode=Mode.RECORD, service="myapp", env="production"),
        Mode.RECORD,
        cassette_path=tmp_path / "c.json",
        request={"method": "GET", "path": "/users/123"},
    )
    record(session, "FIND_ONE", {"filter": {"_id": "123"}}, {"_id": "123"})
    document = session.to_cassette()
    assert document["schema_version"] == SCHEMA_VERSION
    info = document["session"]
    assert info["id"] == session.id
    assert info["service"] == "myapp"
    assert info["env"] == "production"
    assert info["timetracer_version"] == timetracer.__version__
    assert info["duration_ms"] >= 0
    assert document["request"] == {"method": "GET", "path": "/users/123"}
    assert "response" not in document
    assert "error" not in document


def test_recorded_at_is_iso_8601_utc_with_z() -> None:
    before = datetime.now(timezone.utc)
    session = recorder()
    after = datetime.now(timezone.utc)
    text = session.to_cassette()["session"]["recorded_at"]
    assert ISO_UTC_Z.match(text), text
    assert text.endswith("Z")
    parsed = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    assert before - timedelta(milliseconds=1) <= parsed <= after + timedelta(milliseconds=1)
    # Python 3.11+ parses the Z directly; any version parses it once Z becomes +00:00.
    assert datetime.fromisoformat(text.replace("Z", "+00:00")) == parsed


def test_response_and_error_are_included() -> None:
    session = recorder()
    body = {"encoding": "utf-8", "data": "", "size": 0, "truncated": False}
    session.response = {"status": 500, "headers": [], "body": body}
    try:
        raise KeyError("missing")
    except KeyError as exc:
        session.record_error(exc)
    document = session.to_cassette()
    assert document["response"]["status"] == 500
    assert document["error"] == {"type": "builtins.KeyError", "message": "'missing'"}


def test_cassette_round_trips_through_storage(tmp_path: Path) -> None:
    session = recorder(tmp_path)
    record(session, "FIND_ONE", {"filter": {"_id": "123"}}, {"_id": "123", "name": "Alice"})
    assert session.cassette_path is not None
    write_cassette(session.cassette_path, session.to_cassette(), Compression.GZIP)
    assert read_cassette(session.cassette_path)["events"] == session.to_cassette()["events"]


# -- replay -------------------------------------------------------------------------------------------


def replayer_for(tmp_path: Path, recorded: Session, **config: Any) -> Session:
    path = tmp_path / "GET__users_123.json"
    write_cassette(path, recorded.to_cassette(), Compression.NONE)
    return Session(
        TraceConfig(mode=Mode.REPLAY, cassette=path, **config),
        Mode.REPLAY,
        cassette_path=path,
        cassette=read_cassette(path),
    )


def test_replay_session_flags(tmp_path: Path) -> None:
    replay = replayer_for(tmp_path, recorder())
    assert replay.replaying and not replay.recording
    assert replay.replayer is not None
    assert replay.replayer.path == tmp_path / "GET__users_123.json"


def test_identical_calls_are_answered_in_recorded_order(tmp_path: Path) -> None:
    session = recorder()
    args = {"filter": {"status": "pending"}}
    for n in range(3):
        record(session, "FIND_ONE", args, {"job": n})
    record(session, "COUNT_DOCUMENTS", {"filter": {}}, 42)
    replay = replayer_for(tmp_path, session)
    assert replay.replayer is not None
    sig = signature("FIND_ONE", args)
    answers = [replay.replayer.match(sig, args)["result"]["body"]["data"] for _ in range(3)]
    assert answers == [{"job": 0}, {"job": 1}, {"job": 2}]
    count = replay.replayer.match(signature("COUNT_DOCUMENTS", {"filter": {}}), {"filter": {}})
    assert count["result"]["body"]["data"] == 42
    assert replay.replayer.unused() == []
    assert replay.replayer.matched_exact == 4


def test_interleaved_keys_keep_their_own_order(tmp_path: Path) -> None:
    session = recorder()
    a, b = {"filter": {"_id": "a"}}, {"filter": {"_id": "b"}}
    record(session, "FIND_ONE", a, "a1")
    record(session, "FIND_ONE", b, "b1")
    record(session, "FIND_ONE", a, "a2")
    replay = replayer_for(tmp_path, session)
    assert replay.replayer is not None
    match = replay.replayer.match
    assert match(signature("FIND_ONE", a), a)["result"]["body"]["data"] == "a1"
    assert match(signature("FIND_ONE", a), a)["result"]["body"]["data"] == "a2"
    assert match(signature("FIND_ONE", b), b)["result"]["body"]["data"] == "b1"


def test_same_arguments_other_collection_do_not_match(tmp_path: Path) -> None:
    session = recorder()
    args = {"filter": {"_id": "123"}}
    record(session, "FIND_ONE", args, "user", url="myapp.users")
    replay = replayer_for(tmp_path, session)
    assert replay.replayer is not None
    with pytest.raises(ReplayMismatchError, match=r"myapp\.orders"):
        replay.replayer.match(signature("FIND_ONE", args, url="myapp.orders"), args)


def test_mismatch_names_call_cassette_and_differing_field(tmp_path: Path) -> None:
    session = recorder()
    record(session, "FIND_ONE", {"filter": {"_id": "123"}}, {"_id": "123", "name": "Alice"})
    replay = replayer_for(tmp_path, session)
    assert replay.replayer is not None
    live = {"filter": {"_id": "1001"}}
    with pytest.raises(ReplayMismatchError) as info:
        replay.replayer.match(signature("FIND_ONE", live), live)
    message = str(info.value)
    assert isinstance(info.value, AssertionError)
    assert isinstance(info.value, TimeTracerError)
    assert "FIND_ONE" in message
    assert "myapp.users" in message
    assert str(tmp_path / "GET__users_123.json") in message
    assert 'filter._id: "1001" != "123"' in message
    assert "eid=1" in message


def test_mismatch_is_caught_by_plain_assertion_handlers(tmp_path: Path) -> None:
    replay = replayer_for(tmp_path, recorder())
    assert replay.replayer is not None
    with pytest.raises(AssertionError, match="no unused recorded calls left"):
        replay.replayer.match(signature("FIND_ONE", {}), {})


def test_exhausted_queue_raises(tmp_path: Path) -> None:
    session = recorder()
    args = {"filter": {"_id": "123"}}
    record(session, "FIND_ONE", args, "only once")
    replay = replayer_for(tmp_path, session)
    assert replay.replayer is not None
    replay.replayer.match(signature("FIND_ONE", args), args)
    with pytest.raises(ReplayMismatchError, match="call #2"):
        replay.replayer.match(signature("FIND_ONE", args), args)


def test_nearest_candidates_prefer_same_method_and_fewest_differences(tmp_path: Path) -> None:
    session = recorder()
    record(session, "DELETE_ONE", {"filter": {"_id": "123"}}, 1)
    record(session, "FIND_ONE", {"filter": {"_id": "9", "org": "x"}}, "far")
    record(session, "FIND_ONE", {"filter": {"_id": "9", "org": "acme"}}, "near")
    replay = replayer_for(tmp_path, session)
    assert replay.replayer is not None
    live = {"filter": {"_id": "123", "org": "acme"}}
    with pytest.raises(ReplayMismatchError) as info:
        replay.replayer.match(signature("FIND_ONE", live), live)
    lines = str(info.value).splitlines()
    nearest = [line for line in lines if "nearest:" in line]
    assert "eid=3" in nearest[0]  # one field differs
    assert "eid=2" in nearest[1]  # two fields differ
    assert all("DELETE_ONE" not in line for line in nearest)


def test_mismatch_message_survives_unusual_arguments(tmp_path: Path) -> None:
    session = recorder()
    record(session, "FIND_ONE", {"filter": {"_id": "1"}}, 1)
    replay = replayer_for(tmp_path, session)
    assert replay.replayer is not None
    live = {"filter": {"_id": object(), 1: "int key"}}  # not JSON; keys of mixed types
    sig = signature("FIND_ONE", {"filter": {"_id": "x"}})
    with pytest.raises(ReplayMismatchError, match="FIND_ONE"):
        replay.replayer.match(sig, live)


def test_concurrent_replay_uses_each_event_once(tmp_path: Path) -> None:
    session = recorder()
    args = {"filter": {"queue": "jobs"}}
    for n in range(400):
        record(session, "FIND_ONE_AND_UPDATE", args, n)
    replay = replayer_for(tmp_path, session)
    assert replay.replayer is not None
    got: List[int] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(50):
            event = replay.replayer.match(signature("FIND_ONE_AND_UPDATE", args), args)
            with lock:
                got.append(event["result"]["body"]["data"])

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(got) == list(range(400))
    assert replay.replayer.unused() == []
