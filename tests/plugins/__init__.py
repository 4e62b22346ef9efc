"""Tests of timetracer's library plugins.

This file makes ``tests/plugins`` a package, so the folder never shadows a library of the same
name on ``sys.path``.
"""
