# etl_script.py
from datetime import datetime

from pymongo import MongoClient
from timetracer.plugins import enable_pymongo
from timetracer import TraceConfig
import os

# Enable PyMongo recording
enable_pymongo()

# Configure Timetracer for script mode
os.environ['TIMETRACER_MODE'] = 'record'
os.environ['TIMETRACER_CASSETTE_DIR'] = './etl_cassettes'

client = MongoClient('mongodb://localhost:27017')
source_db = client.source
target_db = client.target

def migrate_users():
    """Migrate users from source to target."""
    # Fetch all users from source
    users = list(source_db.users.find({}))
    print(f"Found {len(users)} users")
    
    # Transform data
    transformed = []
    for user in users:
        transformed.append({
            "user_id": user['_id'],
            "email": user['email'],
            "migrated_at": datetime.now()
        })
    
    # Insert into target
    result = target_db.migrated_users.insert_many(transformed)
    print(f"Migrated {len(result.inserted_ids)} users")

if __name__ == '__main__':
    migrate_users()
