"""Put the async shop's sample data into a MongoDB server: two users, three products, one order.

    python seed.py                                   # MONGODB_URI or mongodb://localhost:27017

Existing data is replaced, so running it twice gives the same data.
"""

from __future__ import annotations

import os
import sys

from pymongo import MongoClient

USERS = [
    {"_id": "123", "name": "Alice", "email": "alice@example.com", "age": 30},
    {"_id": "456", "name": "Bob", "email": "bob@example.com", "age": 25},
]
PRODUCTS = [
    {"name": "Keyboard", "price": 49.99, "in_stock": True},
    {"name": "Mouse", "price": 19.5, "in_stock": True},
    {"name": "Monitor", "price": 189.0, "in_stock": False},
]
ORDERS = [{"_id": "A-1", "user": "123"}]


def seed(uri: str) -> None:
    """Replace ``myapp.users``, ``myapp.orders`` and ``shop.products`` with the sample data."""
    client: MongoClient = MongoClient(uri, serverSelectionTimeoutMS=5000)
    try:
        for collection, documents in (
            (client.myapp.users, USERS),
            (client.myapp.orders, ORDERS),
            (client.shop.products, PRODUCTS),
        ):
            collection.delete_many({})
            collection.insert_many([dict(document) for document in documents])
    finally:
        client.close()


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("MONGODB_URI", "mongodb://localhost:27017")
    seed(target)
    print(f"seeded {len(USERS)} users, {len(PRODUCTS)} products and {len(ORDERS)} order into {target}")
