"""The data the benchmarks read and the four PyMongo calls they time.

Everything is deterministic (seeded), so every worker and the server see the same documents. The
calls take the collections (made once, as an app keeps them) and a call number, and work the same
on PyMongo and on mongomock.
No timetracer import here: the raw PyMongo worker uses this module.
"""

from __future__ import annotations

import datetime
import random
from typing import Any, Callable, Dict, List

DATABASE = "timetracer_bench"
SMALL = "small"  # 1,000 small documents, _id 0..999: find_one by _id
BIG = "big"  # 1,000 documents of ~1 KB, 100 per bucket: find returning 100, and the 1,000-doc find
ORDERS = "orders"  # 200 small documents: the 3-stage aggregate
WRITES = "writes"  # insert_one target (emptied before each worker)

SMALL_COUNT = 1000
BIG_COUNT = 1000
BUCKETS = 10
ORDER_COUNT = 200

_WORDS = (
    "account order invoice shipping payment customer product review rating delivery status pending "
    "active archived premium standard refund warehouse stock price discount coupon cart checkout "
    "profile address city country region support ticket message priority resolved opened closed "
    "subscription monthly annual trial renewal cancelled upgrade downgrade feature request bug report "
    "mobile desktop browser session login logout password reset email verified phone notification "
    "settings language timezone currency euro dollar pound small medium large colour black white red "
    "blue green wood metal cotton leather fast slow quiet modern classic garden kitchen office travel"
).split()
_CITIES = ("Lisbon", "Berlin", "Austin", "Osaka", "Lagos", "Lima", "Oslo", "Pune", "Quebec", "Perth")
_EPOCH = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)


def _sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(words)).capitalize() + "."


def small_docs() -> List[Dict[str, Any]]:
    rng = random.Random(1)
    return [
        {"_id": i, "name": f"user{i:04d}", "n": rng.randint(0, 10_000), "active": bool(i % 3)}
        for i in range(SMALL_COUNT)
    ]


def big_doc(i: int, rng: random.Random) -> Dict[str, Any]:
    """A ~1 KB customer record: names, an address, dates, numbers, tags, a history and some text."""
    name = f"{rng.choice(_WORDS).title()} {rng.choice(_WORDS).title()}"
    return {
        "_id": i,
        "bucket": i % BUCKETS,
        "score": round(rng.uniform(0, 1000), 2),
        "name": name,
        "email": f"{name.lower().replace(' ', '.')}{i}@example.com",
        "created": _EPOCH + datetime.timedelta(seconds=rng.randint(0, 30_000_000)),
        "address": {
            "street": f"{rng.randint(1, 999)} {rng.choice(_WORDS).title()} Street",
            "city": rng.choice(_CITIES),
            "zip": f"{rng.randint(10000, 99999)}",
        },
        "tags": rng.sample(_WORDS, 4),
        "history": [
            {
                "at": _EPOCH + datetime.timedelta(seconds=rng.randint(0, 30_000_000)),
                "action": rng.choice(_WORDS),
                "amount": round(rng.uniform(1, 500), 2),
            }
            for _ in range(4)
        ],
        "notes": " ".join(_sentence(rng, rng.randint(6, 14)) for _ in range(6)),
    }


def big_docs() -> List[Dict[str, Any]]:
    rng = random.Random(2)
    return [big_doc(i, rng) for i in range(BIG_COUNT)]


def order_docs() -> List[Dict[str, Any]]:
    rng = random.Random(3)
    return [
        {
            "_id": i,
            "status": rng.choice(("paid", "open", "void")),
            "total": rng.randint(5, 500),
            "store": i % 8,
        }
        for i in range(ORDER_COUNT)
    ]


def seed(db: Any) -> None:
    """Fill ``db`` (PyMongo or mongomock) with the benchmark collections, replacing what was there."""
    for name, docs in ((SMALL, small_docs()), (BIG, big_docs()), (ORDERS, order_docs())):
        db.drop_collection(name)
        db[name].insert_many(docs)
    db.drop_collection(WRITES)


# -- the four timed calls ---------------------------------------------------------------------

PIPELINE = [
    {"$match": {"status": "paid"}},
    {"$group": {"_id": "$store", "n": {"$sum": 1}, "total": {"$sum": "$total"}}},
    {"$sort": {"_id": 1}},
]


def collections(db: Any) -> Dict[str, Any]:
    """The benchmark's collection objects, made once (``db[name]`` builds a new one each time)."""
    return {name: db[name] for name in (SMALL, BIG, ORDERS, WRITES)}


def find_one(cols: Dict[str, Any], i: int) -> Any:
    return cols[SMALL].find_one({"_id": i % 100})


def find_100(cols: Dict[str, Any], i: int) -> Any:
    docs = list(cols[BIG].find({"bucket": i % BUCKETS}))
    assert len(docs) == BIG_COUNT // BUCKETS
    return docs


def insert_one(cols: Dict[str, Any], i: int) -> Any:
    return cols[WRITES].insert_one({"n": i, "name": "bench", "tags": ["a", "b"]})


def aggregate(cols: Dict[str, Any], i: int) -> Any:
    return list(cols[ORDERS].aggregate(PIPELINE))


# name → (label in the table, the call, calls per timed round). Rounds are short and many, and
# the modes take turns round by round: on a shared machine, client CPU per network call drifts by
# tens of percent within seconds, and only short interleaved rounds see the same conditions.
CALLS: Dict[str, tuple[str, Callable[[Dict[str, Any], int], Any], int]] = {
    "find_one": ("`find_one` by `_id`", find_one, 40),
    "find_100": ("`find` → 100 docs of ~1 KB", find_100, 6),
    "insert_one": ("`insert_one`", insert_one, 30),
    "aggregate": ("`aggregate`, 3 stages", aggregate, 25),
}


def reset(db: Any, name: str) -> None:
    """Put the database back before a round (untimed): inserts go into an empty collection."""
    if name == "insert_one":
        db.drop_collection(WRITES)


def batch(db: Any, call: Callable[[Any, int], Any], count: int) -> Callable[[], None]:
    """A function making ``count`` calls numbered 0..count-1 (the same numbers in every mode)."""
    cols = collections(db)

    def run() -> None:
        for i in range(count):
            call(cols, i)

    return run
