"""Settings of the blog example: no SQL database, posts live in MongoDB (read with PyMongo).

timetracer's middleware comes first in ``MIDDLEWARE``. Its settings are the ``TIMETRACER_*``
environment variables (``TIMETRACER_MODE=record`` or ``replay``, ``TIMETRACER_CASSETTE_DIR``).
"""

import os

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "timetracer-example-not-a-secret")
DEBUG = True
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]", "testserver"]

INSTALLED_APPS = []
MIDDLEWARE = [
    "timetracer.integrations.django.TimeTracerMiddleware",
    "django.middleware.common.CommonMiddleware",
]
ROOT_URLCONF = "blog_site.urls"
WSGI_APPLICATION = "blog_site.wsgi.application"
DATABASES = {}  # no SQL database: the blog's posts are in MongoDB

USE_TZ = True
