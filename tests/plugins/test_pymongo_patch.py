"""Installing and removing the PyMongo wrappers: exact restore, idempotence, thread safety."""

from __future__ import annotations

import threading
from typing import Any, Callable, Dict, List

import pymongo
import pytest
from pymongo.collection import Collection
from pymongo.cursor import Cursor
from pymongo.database import Database
from pymongo.mongo_client import MongoClient

from timetracer.plugins import disable_pymongo, enable_pymongo
from timetracer.plugins.pymongo import is_enabled

from ._support import assert_same, observe

PATCHED_CLASSES = (Collection, Database, MongoClient, Cursor)


def _class_dicts() -> Dict[type, Dict[str, Any]]:
    return {cls: dict(vars(cls)) for cls in PATCHED_CLASSES}


@pytest.fixture
def unpatched() -> Any:
    """Start with the plugin off; re-enable it afterwards for the other tests."""
    disable_pymongo()
    try:
        yield _class_dicts()
    finally:
        enable_pymongo()


def _in_threads(function: Callable[[], None], count: int = 8) -> None:
    barrier = threading.Barrier(count)
    errors: List[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            function()
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors


def test_disable_restores_the_exact_original_functions(unpatched: Dict[type, Dict[str, Any]]) -> None:
    original_find = Collection.find
    original_find_one = Collection.find_one
    original_init = MongoClient.__init__

    enable_pymongo()
    assert is_enabled()
    assert Collection.find is not original_find
    assert Collection.find_one is not original_find_one
    assert MongoClient.__init__ is not original_init

    disable_pymongo()
    assert not is_enabled()
    assert Collection.find is original_find
    assert Collection.find_one is original_find_one
    assert MongoClient.__init__ is original_init
    assert _class_dicts() == unpatched


def test_enable_and_disable_are_idempotent(unpatched: Dict[type, Dict[str, Any]]) -> None:
    original_find = Collection.find

    enable_pymongo()
    once = _class_dicts()
    enable_pymongo()
    assert _class_dicts() == once
    assert Collection.find.__wrapped__ is original_find  # wrapped once, not twice

    disable_pymongo()
    disable_pymongo()
    assert _class_dicts() == unpatched


def test_enable_and_disable_from_eight_threads_patch_exactly_once(
    unpatched: Dict[type, Dict[str, Any]],
) -> None:
    original_find = Collection.find
    original_update_one = Collection.update_one

    _in_threads(enable_pymongo)
    assert Collection.find.__wrapped__ is original_find
    assert Collection.update_one.__wrapped__ is original_update_one

    _in_threads(disable_pymongo)
    assert Collection.find is original_find
    assert _class_dicts() == unpatched


def test_without_a_session_calls_reach_pymongo_untouched(fresh_db: Any) -> None:
    assert is_enabled()
    fresh_db.items.insert_many([{"i": i} for i in range(3)])
    cursor = fresh_db.items.find({}, {"_id": 0}).sort("i")
    assert type(cursor) is Cursor  # not the traced subclass: no session, no tracing
    assert list(cursor) == [{"i": 0}, {"i": 1}, {"i": 2}]
    assert fresh_db.items.count_documents({}) == 3


# A wrapper passes the method's first argument on by position (it is not packed with the rest):
# every way an app passes arguments must still reach PyMongo exactly as given, errors included.
ARGUMENT_FORMS: Dict[str, Callable[[Any], Any]] = {
    "find_one-positional": lambda c: c.find_one({"i": 1}),
    "find_one-keyword": lambda c: c.find_one(filter={"i": 2}),
    "find_one-none": lambda c: c.find_one(),
    "find_one-an-id-and-keywords": lambda c: c.find_one(0, projection={"i": 1}, skip=0),
    "find_one-filter-twice": lambda c: c.find_one({"i": 1}, filter={"i": 2}),
    "find_one-too-many": lambda c: c.find_one({}, None, *range(30)),
    "find-positional-and-keyword": lambda c: c.find({"i": {"$gt": 0}}, {"_id": 0}, sort=[("i", -1)]),
    "find-keywords-only": lambda c: c.find(projection={"_id": 0}, filter={"i": 2}),
    "find-none": lambda c: c.find().sort("i"),
    "count_documents-keyword": lambda c: c.count_documents(filter={"i": {"$lt": 2}}),
    "update_one-keywords": lambda c: c.update_one(update={"$set": {"j": 1}}, filter={"i": 0}),
    "update_one-missing-update": lambda c: c.update_one({"i": 0}),
    "insert_one-none": lambda c: c.insert_one(),
    "insert_one-unknown-keyword": lambda c: c.insert_one({"i": 9}, nonsense=1),
    "distinct-positional": lambda c: c.distinct("i", {"i": {"$gt": 0}}),
}


def _outcome(work: Callable[[Any], Any], collection: Any) -> Any:
    try:
        return ("returned", observe(work(collection)))
    except Exception as exc:
        return ("raised", type(exc), str(exc))


@pytest.mark.parametrize("form", sorted(ARGUMENT_FORMS))
def test_without_a_session_every_form_of_arguments_reaches_pymongo_as_given(form: str, fresh_db: Any) -> None:
    work = ARGUMENT_FORMS[form]
    outcomes = []
    for enabled in (False, True, False):
        fresh_db.items.drop()
        fresh_db.items.insert_many([{"_id": i, "i": i} for i in range(3)])
        if enabled:
            enable_pymongo()
        else:
            disable_pymongo()
        try:
            outcomes.append(_outcome(work, fresh_db.items))
        finally:
            enable_pymongo()
    off, on, again = outcomes
    assert on[0] == off[0] == again[0], outcomes
    if off[0] == "returned":
        assert_same(on[1], off[1])
    else:
        assert on == off, outcomes


def test_wrappers_keep_the_pymongo_names_and_docs() -> None:
    assert is_enabled()
    assert Collection.find_one.__name__ == "find_one"
    assert Collection.find_one.__doc__ == Collection.find_one.__wrapped__.__doc__
    assert pymongo.MongoClient.__init__.__name__ == "__init__"
