"""pytest plugin: the ``timetracer_record`` and ``timetracer_replay`` fixtures."""

from __future__ import annotations
