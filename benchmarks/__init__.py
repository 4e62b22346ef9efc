"""Overhead benchmarks: what timetracer costs per PyMongo call, per request and per cassette.

Run them with ``python -m benchmarks`` (or ``make bench``). The parent process starts the mongoeco
wire server the tests use, seeds it, runs each group of measurements in a subprocess of its own
(raw PyMongo in one where timetracer is never imported), then prints a Markdown table and writes
it to ``benchmarks/results.md``. Nothing here is imported by the package or its tests.
"""
