# views.py
# The spec's Django views; only the MongoDB URI comes from MONGODB_URI (default localhost:27017).
import os

from django.http import JsonResponse
from pymongo import MongoClient

from timetracer.plugins import enable_pymongo

# Enable once at startup
enable_pymongo()

client = MongoClient(os.environ.get("MONGODB_URI", "mongodb://localhost:27017"))
db = client.blog


def post_list(request):
    """List blog posts."""
    posts = list(db.posts.find({"published": True}))

    for post in posts:
        post['_id'] = str(post['_id'])

    return JsonResponse({"posts": posts})


def post_detail(request, post_id):
    """Get single post."""
    post = db.posts.find_one({"_id": post_id})

    if not post:
        return JsonResponse({"error": "Not found"}, status=404)

    post['_id'] = str(post['_id'])
    return JsonResponse(post)
