# test_users.py
import pytest
from pymongo import MongoClient
from timetracer.plugins import enable_pymongo

def test_get_user_from_cassette(timetracer_replay):
    """Test user retrieval with replayed MongoDB."""
    enable_pymongo()
    
    # Replay from cassette
    with timetracer_replay("GET__users_123.json"):
        client = MongoClient('mongodb://fake:27017')  # Won't actually connect
        db = client.myapp
        
        # This returns data from cassette!
        user = db.users.find_one({"_id": "123"})
        
        assert user['name'] == "Alice"
        assert user['email'] == "alice@example.com"


def test_create_user_recorded(timetracer_record):
    """Test user creation with recording."""
    enable_pymongo()
    
    with timetracer_record() as cassette_path:
        client = MongoClient('mongodb://localhost:27017')
        db = client.testdb
        
        # This is recorded
        result = db.users.insert_one({
            "name": "Bob",
            "email": "bob@example.com"
        })
        
        assert result.inserted_id is not None
    
    # Cassette saved at cassette_path
    print(f"Cassette saved: {cassette_path}")
