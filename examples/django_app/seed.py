"""Put the blog example's sample posts into a MongoDB server (``blog.posts``), replacing any there.

python seed.py                                   # MONGODB_URI or mongodb://localhost:27017
python seed.py mongodb://127.0.0.1:27018/?directConnection=true
"""

from __future__ import annotations

import os
import sys
from datetime import datetime

from pymongo import MongoClient

POSTS = [
    {
        "_id": "hello-world",
        "title": "Hello, world",
        "body": "The first post.",
        "published": True,
        "published_at": datetime(2026, 1, 22, 14, 0, 0),
    },
    {
        "_id": "replay-without-a-database",
        "title": "Replay without a database",
        "body": "Record once, replay anywhere.",
        "published": True,
        "published_at": datetime(2026, 1, 23, 9, 30, 0),
    },
    {"_id": "draft", "title": "Not yet", "body": "...", "published": False, "published_at": None},
]


def seed(uri: str) -> None:
    """Replace the ``blog.posts`` collection with the sample posts."""
    client: MongoClient = MongoClient(uri, serverSelectionTimeoutMS=5000)
    try:
        client.blog.posts.delete_many({})
        client.blog.posts.insert_many([dict(post) for post in POSTS])
    finally:
        client.close()


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("MONGODB_URI", "mongodb://localhost:27017")
    seed(target)
    print(f"seeded {len(POSTS)} posts into {target}")
