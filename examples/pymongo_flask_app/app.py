"""The shop app of the PyMongo guide: list and create products, get a user.

The spec's "Quick Start" and "Flask Application" code in one file; the only change is that the
MongoDB URI comes from ``MONGODB_URI`` (default ``mongodb://localhost:27017``).
"""

import os

from flask import Flask, jsonify, request
from pymongo import MongoClient

from timetracer.integrations.flask import auto_setup
from timetracer.plugins import enable_pymongo

# Create Flask app with Timetracer
app = auto_setup(Flask(__name__))

# Enable PyMongo plugin
enable_pymongo()

# Connect to MongoDB
client = MongoClient(os.environ.get("MONGODB_URI", "mongodb://localhost:27017"))
db = client.shop  # products ("Flask Application")
users_db = client.myapp  # users ("Quick Start")


@app.route('/users/<user_id>')
def get_user(user_id):
    # This query is automatically captured!
    user = users_db.users.find_one({"_id": user_id})
    return jsonify(user)


@app.route('/products', methods=['GET'])
def list_products():
    """List all products."""
    products = list(db.products.find({"in_stock": True}))

    # Convert ObjectId to string for JSON
    for product in products:
        product['_id'] = str(product['_id'])

    return jsonify({"products": products})


@app.route('/products', methods=['POST'])
def create_product():
    """Create a new product."""
    data = request.get_json()

    result = db.products.insert_one({
        "name": data['name'],
        "price": data['price'],
        "in_stock": True
    })

    return jsonify({
        "product_id": str(result.inserted_id),
        "created": True
    }), 201


if __name__ == '__main__':
    app.run(debug=True)
