"""An async shop on Starlette: Motor and PyMongo's AsyncMongoClient, recorded and replayed by timetracer.

    MONGODB_URI=mongodb://localhost:27017 python seed.py
    TIMETRACER_MODE=record uvicorn app:app --port 8000     # cassettes/<METHOD>__<path>.json
    TIMETRACER_MODE=replay uvicorn app:app --port 8000     # no database needed

Products go through Motor, users and orders through ``pymongo.AsyncMongoClient`` (PyMongo 4.9+;
on older PyMongo the app uses Motor for those routes too).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, Dict

from bson import ObjectId
from motor.motor_asyncio import AsyncIOMotorClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from timetracer.asgi import TimeTracerMiddleware
from timetracer.plugins import enable_motor, enable_pymongo

enable_pymongo()  # AsyncMongoClient (and MongoClient)
enable_motor()  # Motor

URI = os.environ.get("MONGODB_URI", "mongodb://localhost:27017")
motor_client: AsyncIOMotorClient = AsyncIOMotorClient(URI, serverSelectionTimeoutMS=3000)
try:
    from pymongo import AsyncMongoClient

    async_client: Any = AsyncMongoClient(URI, serverSelectionTimeoutMS=3000)
except ImportError:  # PyMongo < 4.9
    async_client = motor_client

shop = motor_client.shop
accounts = async_client.myapp


def jsonable(document: Dict[str, Any]) -> Dict[str, Any]:
    return {key: str(value) if isinstance(value, ObjectId) else value for key, value in document.items()}


async def get_user(request: Request) -> JSONResponse:
    user = await accounts.users.find_one({"_id": request.path_params["user_id"]})
    if user is None:
        return JSONResponse({"error": "no such user"}, status_code=404)
    return JSONResponse(user)


async def list_products(request: Request) -> JSONResponse:
    cursor = shop.products.find({"in_stock": True}).sort("price", 1)
    products = [jsonable(product) async for product in cursor]
    return JSONResponse({"products": products})


async def create_product(request: Request) -> JSONResponse:
    data = await request.json()
    product = {"name": data["name"], "price": data["price"], "in_stock": True}
    result = await shop.products.insert_one(product)
    return JSONResponse({"product_id": str(result.inserted_id), "created": True}, status_code=201)


async def stats(request: Request) -> JSONResponse:
    # Two calls at once, in tasks of their own: both belong to this request's cassette.
    by_stock, users = await asyncio.gather(
        shop.products.aggregate(
            [{"$group": {"_id": "$in_stock", "n": {"$sum": 1}}}, {"$sort": {"_id": 1}}]
        ).to_list(None),
        accounts.users.count_documents({}),
    )
    return JSONResponse({"products_by_stock": by_stock, "users": users})


async def order(request: Request) -> JSONResponse:
    data = await request.json()
    try:
        await accounts.orders.insert_one({"_id": data["order_id"], "user": data["user_id"]})
    except Exception as exc:  # a duplicate order id, as the server reports it
        return JSONResponse(
            {"error": type(exc).__name__, "code": getattr(exc, "code", None)}, status_code=409
        )
    return JSONResponse({"order_id": data["order_id"]}, status_code=201)


app = Starlette(
    routes=[
        Route("/users/{user_id}", get_user),
        Route("/products", list_products, methods=["GET"]),
        Route("/products", create_product, methods=["POST"]),
        Route("/stats", stats),
        Route("/orders", order, methods=["POST"]),
    ]
)
app.add_middleware(TimeTracerMiddleware)
