"""A small Flask + PyMongo app recorded by timetracer, served by a real server in the kill tests.

Run as ``python served_app.py PORT`` (the Flask development server), or as ``served_app:app``
under waitress or gunicorn. ``SERVED_MONGODB_URI`` is the MongoDB server it reads from; the
``TIMETRACER_*`` variables configure recording.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Iterator

from flask import Flask, Response, jsonify
from pymongo import MongoClient

import timetracer.plugins
from timetracer.integrations.flask import auto_setup

timetracer.plugins.enable_pymongo()
client: MongoClient[Any] = MongoClient(os.environ["SERVED_MONGODB_URI"], serverSelectionTimeoutMS=10000)
items = client[os.environ.get("SERVED_DB", "reliability")]["items"]
app = auto_setup(Flask(__name__))


@app.get("/item")
def item() -> Any:
    found = items.find_one({"name": "widget"}, {"_id": 0})
    return jsonify(found=found, padding="x" * 4096)


@app.get("/stream")
def stream() -> Response:
    found = list(items.find({}, {"_id": 0}).sort("n", 1))

    def body() -> Iterator[str]:
        for document in found:
            yield f"{document['name']}\n"
        yield "end\n"

    return Response(body(), mimetype="text/plain")


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(sys.argv[1]), use_reloader=False)
