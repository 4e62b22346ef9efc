"""Framework adapters: thin layers over :mod:`timetracer.wsgi`."""
