"""The parent process: start the database, run each benchmark group in a subprocess, report.

Options: ``--quick`` (few rounds, for checking the benchmarks themselves), ``--rounds N``,
``--output PATH`` (default ``benchmarks/results.md``; ``-`` prints only), ``--json PATH`` (every
measurement, rounds included).
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any, Dict, List, Optional

from benchmarks import _report
from benchmarks import _workload as work

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results.md"
# In run order. raw PyMongo runs first and again last; both runs' rounds count (drift shows).
GROUPS = ("raw", "timetracer", "mongomock", "wsgi", "cassettes", "documents", "raw")


def _mongo_server() -> ModuleType:
    """``scripts/mongo_server.py``, imported by path (``scripts`` is not a package)."""
    name = "timetracer_bench_mongo_server"
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "scripts" / "mongo_server.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _server_version(python: Path) -> str:
    try:
        text = subprocess.run(
            [str(python), "-c", "import importlib.metadata as m; print(m.version('mongoeco'))"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        text = "unknown"
    return f"mongoeco {text}"


def _environment() -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIMETRACER_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.setdefault("PYTHONHASHSEED", "0")
    return env


def _speed_probe() -> float:
    """CPU ms for 10 million additions in a Python loop, best of three: how fast this machine runs
    Python now (the VM's speed changes with its neighbours' load)."""
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        total = 0
        for i in range(10_000_000):
            total += i
        best = min(best, time.process_time() - started)
    return best * 1000


def _run_group(task: str, config: Dict[str, Any]) -> Dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="timetracer-bench-") as folder:
        output = Path(folder) / "result.json"
        started = time.perf_counter()
        command = [sys.executable, "-m", "benchmarks._worker", task, json.dumps(config), str(output)]
        subprocess.run(command, cwd=REPO_ROOT, env=_environment(), check=True)
        print(f"  {task}: {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
        return json.loads(output.read_text(encoding="utf-8"))


def _merge_raw(first: Dict[str, Any], second: Dict[str, Any]) -> Dict[str, Any]:
    """One raw PyMongo result from two runs: the median over both runs' rounds."""
    import statistics

    merged: Dict[str, Any] = {"calls": {}, "timetracer_imported": False}
    for name, modes in first["calls"].items():
        a, b = modes["raw"], second["calls"][name]["raw"]
        row = dict(a)
        row["cpu_rounds_us"] = a["cpu_rounds_us"] + b["cpu_rounds_us"]
        row["cpu_us"] = statistics.median(row["cpu_rounds_us"])
        row["wall_us"] = statistics.median([a["wall_us"], b["wall_us"]])
        row["rounds"] = a["rounds"] + b["rounds"]
        row["runs_cpu_us"] = [a["cpu_us"], b["cpu_us"]]
        merged["calls"][name] = {"raw": row}
    return merged


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="few rounds: check the benchmarks run")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds per measurement (default 25)")
    parser.add_argument("--output", default=str(RESULTS), help="Markdown file to write ('-': none)")
    parser.add_argument("--json", default=None, help="also write every measurement, as JSON, here")
    options = parser.parse_args(argv)
    rounds = options.rounds or (3 if options.quick else 25)
    scale = 0.2 if options.quick else 1.0

    started = time.perf_counter()
    speed_before = _speed_probe()
    servers = _mongo_server()
    server_python = servers.ensure_venv()  # may build the server venv once; not timed below
    print("timetracer benchmarks: starting the mongoeco wire server", file=sys.stderr, flush=True)
    server = servers.start_server()
    results: Dict[str, Any] = {}
    try:
        import pymongo

        client: Any = pymongo.MongoClient(server.uri, serverSelectionTimeoutMS=10_000)
        work.seed(client[work.DATABASE])
        client.close()
        config = {"uri": server.uri, "rounds": rounds, "scale": scale}
        raw_runs = []
        for task in GROUPS:
            result = _run_group(task, config)
            if task == "raw":
                raw_runs.append(result)
            else:
                results[task] = result
        results["raw"] = _merge_raw(*raw_runs)
    finally:
        server.stop()
    elapsed = time.perf_counter() - started
    speed_after = _speed_probe()
    meta = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{_cpu_model()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "pymongo": _version("pymongo"),
        "mongomock": _version("mongomock"),
        "zstandard": _version("zstandard"),
        "timetracer": _version("timetracer"),
        "server": _server_version(server_python),
        "rounds": str(rounds) + (" (--quick)" if options.quick else ""),
        "runtime": f"{elapsed:.0f} s",
        "speed": f"{speed_before:.0f} ms before, {speed_after:.0f} ms after",
    }
    text = _report.render(results, meta)
    print(text)
    if options.json:
        Path(options.json).write_text(
            json.dumps({"meta": meta, "results": results}, indent=1), encoding="utf-8"
        )
    if options.output != "-":
        Path(options.output).write_text(text, encoding="utf-8")
        print(f"written to {options.output}", file=sys.stderr)
    return 0
