"""Put the shop app's sample data into a MongoDB server: user "123" and three products.

    python seed.py                                   # MONGODB_URI or mongodb://localhost:27017
    python seed.py mongodb://127.0.0.1:27018/?directConnection=true

Existing users and products are replaced, so running it twice gives the same data.
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


def seed(uri: str) -> None:
    """Replace the ``myapp.users`` and ``shop.products`` collections with the sample data."""
    client: MongoClient = MongoClient(uri, serverSelectionTimeoutMS=5000)
    try:
        client.myapp.users.delete_many({})
        client.myapp.users.insert_many([dict(user) for user in USERS])
        client.shop.products.delete_many({})
        client.shop.products.insert_many([dict(product) for product in PRODUCTS])
    finally:
        client.close()


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("MONGODB_URI", "mongodb://localhost:27017")
    seed(target)
    print(f"seeded {len(USERS)} users and {len(PRODUCTS)} products into {target}")
