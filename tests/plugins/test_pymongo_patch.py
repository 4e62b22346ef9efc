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


def test_wrappers_keep_the_pymongo_names_and_docs() -> None:
    assert is_enabled()
    assert Collection.find_one.__name__ == "find_one"
    assert Collection.find_one.__doc__ == Collection.find_one.__wrapped__.__doc__
    assert pymongo.MongoClient.__init__.__name__ == "__init__"
