"""The recipe of ``tests/data/pymongo_cassette_1_0.json``, a cassette recorded by timetracer 1.0.

It was made with the 1.0 code (commit 5253880) by running :func:`legacy_work` under a recording
session against a database seeded with :func:`legacy_seed`; this module imports nothing newer.
"""

from __future__ import annotations

import datetime
from typing import Any, Dict, List

from bson import Int64
from pymongo import ReturnDocument

from ._differential import Scenario, run_steps

LEGACY_DB = "tt_legacy_1_0"


def legacy_seed() -> List[Dict[str, Any]]:
    """The data the 1.0 cassette was recorded against."""
    return [
        {
            "_id": i,
            "name": f"user{i}",
            "when": datetime.datetime(2021, 1, i + 1, 12, 30, 15, 250000),
            "score": Int64(i * 10),
            "tags": ["a", "b"][: i % 3],
            "pattern": {"$regex": "^u", "$options": "i"},
            "profile": {"city": "Paris" if i % 2 else "Lyon", "zip": f"{75000 + i}"},
        }
        for i in range(6)
    ]


def _docs(cursor: Any) -> List[Any]:
    return list(cursor)


def legacy_scenario() -> Scenario:
    """What the 1.0 cassette recorded (cursors are compared by their documents: 1.0 did not
    record cursor attributes)."""
    return Scenario(
        "users",
        [
            ("find_one", lambda c: c.find_one({"_id": 2})),
            ("find", lambda c: _docs(c.find({"profile.city": "Paris"}).sort("_id", -1))),
            (
                "aggregate-id-last",
                lambda c: _docs(
                    c.aggregate(
                        [{"$sort": {"_id": 1}}, {"$replaceRoot": {"newRoot": {"n": "$name", "_id": "$_id"}}}]
                    )
                ),
            ),
            ("count_documents", lambda c: c.count_documents({"score": {"$gte": 20}})),
            ("distinct", lambda c: c.distinct("profile.city")),
            ("insert_one", lambda c: c.insert_one({"_id": 100, "name": "new"}).inserted_id),
            (
                "upsert",
                lambda c: c.update_one({"_id": 101}, {"$set": {"name": "up"}}, upsert=True).raw_result,
            ),
            ("duplicate", lambda c: c.insert_one({"_id": 1})),
            (
                "find_one_and_update",
                lambda c: c.find_one_and_update(
                    {"_id": 3}, {"$set": {"seen": True}}, return_document=ReturnDocument.AFTER
                ),
            ),
        ],
        seed=legacy_seed(),
    )


def legacy_work(db: Any) -> Any:
    """Run the scenario (the recipe that made the checked-in cassette)."""
    return run_steps(legacy_scenario(), db.users)
