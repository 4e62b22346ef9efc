"""The WSGI application, for WSGI servers (``gunicorn blog_site.wsgi``)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "blog_site.settings")

application = get_wsgi_application()
