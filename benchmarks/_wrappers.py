"""What ``enable_pymongo()`` adds to a call when no session is active, measured with no I/O.

The client CPU of one network call varies by more than a microsecond from round to round, so the
wrappers are costed apart. The wrappers are found by comparing every PyMongo class before and
after ``enable_pymongo()``; the ones each benchmarked call enters are counted (``sys.setprofile``);
each kind of wrapper (one code object) is timed through a probe that enters it once and does no
I/O, plugin enabled against disabled, rounds interleaved. A call's added CPU is the sum over the
wrappers it enters.
"""

from __future__ import annotations

import collections
import sys
from types import CodeType
from typing import Any, Callable, Dict, List

from benchmarks import _workload as work
from benchmarks._timing import interleave, paired_difference, timed


def _pymongo_classes() -> List[type]:
    seen: Dict[int, type] = {}
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "pymongo" or name.startswith("pymongo.")):
            continue
        for value in list(vars(module).values()):
            if isinstance(value, type) and str(getattr(value, "__module__", "")).startswith("pymongo"):
                seen[id(value)] = value
    return list(seen.values())


def installed_wrappers() -> Dict[CodeType, List[str]]:
    """The code object of each wrapper ``enable_pymongo()`` installs → the methods it replaces."""
    from timetracer.plugins import disable_pymongo, enable_pymongo

    disable_pymongo()
    classes = _pymongo_classes()
    before = {cls: dict(vars(cls)) for cls in classes}
    enable_pymongo()
    wrappers: Dict[CodeType, List[str]] = collections.defaultdict(list)
    for cls in classes:
        for name, value in vars(cls).items():
            code = getattr(value, "__code__", None)
            if before[cls].get(name) is not value and code is not None:
                wrappers[code].append(f"{cls.__name__}.{name}")
    return dict(wrappers)


def label(names: List[str]) -> str:
    names = sorted(set(names))
    if len(names) == 1:
        return names[0]
    shown = ", ".join(names[:2]) + (", ..." if len(names) > 2 else "")
    return f"one wrapper code for {len(names)} methods ({shown})"


def entered(call: Callable[[], Any], codes: Dict[CodeType, List[str]]) -> Dict[CodeType, int]:
    """How many times ``call()`` enters each wrapper (this thread only)."""
    counts: Dict[CodeType, int] = collections.Counter()

    def hook(frame: Any, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code in codes:
            counts[frame.f_code] += 1

    sys.setprofile(hook)
    try:
        call()
    finally:
        sys.setprofile(None)
    return dict(counts)


def _insert_probe(db: Any) -> tuple[str, Callable[[], Any]]:
    """``insert_one`` with no I/O: on a Collection whose network step is stubbed out."""
    from pymongo.collection import Collection

    if hasattr(Collection, "_insert_one"):

        class NoNetwork(Collection):  # type: ignore[type-arg, misc]
            def _insert_one(self, *args: Any, **kwargs: Any) -> Any:
                return None

        stub = NoNetwork(db, "probe")
        return "`insert_one()` (PyMongo's network step stubbed)", lambda: stub.insert_one({"_id": 1})
    collection = db[work.WRITES]

    def refused() -> None:  # older layout: a call refused before any I/O (adds an exception's cost)
        try:
            collection.insert_one(1)
        except TypeError:
            pass

    return "`insert_one(1)` (refused before any I/O)", refused


def _probes(client: Any, db: Any) -> Dict[str, Callable[[], Any]]:
    collection = db[work.SMALL]
    name, insert = _insert_probe(db)
    probes: Dict[str, Callable[[], Any]] = {
        name: insert,
        "`find()` (builds a cursor, sends nothing)": lambda: collection.find({"_id": 1}),
        # Looked up at each call: a bound method kept from before a toggle would keep its wrapper.
        "`MongoClient._get_topology()` (connected)": lambda: client._get_topology(),
    }
    topology = getattr(client, "_topology", None)
    if topology is not None and hasattr(topology, "_ensure_opened"):
        probes["`Topology._ensure_opened()` (open)"] = lambda: topology._ensure_opened()
    return probes


def wrapper_costs(client: Any, db: Any, rounds: int, scale: float) -> Dict[str, Any]:
    from timetracer.plugins import disable_pymongo, enable_pymongo

    codes = installed_wrappers()
    cols = work.collections(db)
    for _label, call, _per in work.CALLS.values():
        call(cols, 0)  # warm: connections, lazy imports
    calls = {
        name: entered(lambda call=call: call(cols, 0), codes) for name, (_, call, _) in work.CALLS.items()
    }
    count = max(500, int(2_000 * scale))
    measured: Dict[CodeType, List[float]] = collections.defaultdict(list)
    probes_out: Dict[str, Any] = {}
    for probe_name, probe in _probes(client, db).items():
        hits = entered(probe, codes)
        if sum(hits.values()) != 1:
            entered_count = sum(hits.values())
            reason = "not wrapped now" if entered_count == 0 else f"enters {entered_count} wrappers, not 1"
            probes_out[probe_name] = {"skipped": reason}
            continue
        (code,) = hits

        def run(probe: Callable[[], Any] = probe) -> None:
            for _ in range(count):
                probe()

        def off(run: Callable[[], None] = run) -> tuple[float, float]:
            disable_pymongo()
            return timed(run)

        def on(run: Callable[[], None] = run) -> tuple[float, float]:
            enable_pymongo()
            return timed(run)

        series = interleave(rounds, {"disabled": (off, count), "enabled": (on, count)})
        added = paired_difference(series["enabled"], series["disabled"])
        measured[code].append(max(0.0, added or 0.0))
        probes_out[probe_name] = {
            "wrapper": label(codes[code]),
            "disabled_us": series["disabled"].summary()["cpu_us"],
            "enabled_us": series["enabled"].summary()["cpu_us"],
            "added_us": added,
        }
    enable_pymongo()
    # Probes entering the same wrapper code (one guard on two methods) are averaged.
    cost = {code: sum(values) / len(values) for code, values in measured.items()}
    fallback = max(cost.values(), default=0.0)
    out_calls: Dict[str, Any] = {}
    for name, hits in calls.items():
        parts = []
        total = 0.0
        for code, times in sorted(hits.items(), key=lambda item: label(codes[item[0]])):
            each = cost.get(code, fallback)
            total += times * each
            parts.append(
                {"wrapper": label(codes[code]), "times": times, "each_us": each, "probed": code in cost}
            )
        out_calls[name] = {"added_us": total, "wrappers": parts}
    return {"probes": probes_out, "calls": out_calls, "installed": sum(len(v) for v in codes.values())}
