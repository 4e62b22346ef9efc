"""``timetracer timeline CASSETTE [-o OUT.html]``: the request and its calls as bars on a time axis.

The page is one self-contained HTML file (inline style and script; no external script, style, font
or image), readable without a server. Each call is a row: ``#eid METHOD namespace``, a bar from
``start_offset_ms`` lasting ``duration_ms``, and its duration; hovering a row shows its arguments
and result, clicking it keeps them open. The page works without JavaScript too (the details are
``<details>`` elements); the script only adds keyboard and click-to-pin behaviour.
"""

from __future__ import annotations

import argparse
import html
import json
import math
from pathlib import Path
from typing import Any, Dict, List

from timetracer._s3path import S3Path
from timetracer.commands import _summary
from timetracer.commands._common import (
    EXIT_OK,
    CommandError,
    Location,
    describe_request,
    display_path,
    events,
    load,
    location,
    ms,
)

HELP = "write a self-contained HTML timeline of a cassette's calls (prints its path)"

_COLORS = {"read": "#2f6fde", "write": "#d9822b", "command": "#7a52c7", "error": "#d1343b"}
_WRITES = ("INSERT", "UPDATE", "REPLACE", "DELETE", "BULK", "FIND_ONE_AND")


def add_parser(commands: Any) -> None:
    parser = commands.add_parser("timeline", help=HELP, description=HELP + ". " + __doc__.split("\n\n")[1])
    parser.add_argument("cassette", metavar="CASSETTE", help="the cassette file")
    parser.add_argument(
        "-o",
        "--output",
        metavar="OUT.html",
        help="where to write the page (default: beside the cassette, .html; for an s3:// cassette, the current folder)",
    )
    parser.set_defaults(run=run)


def default_output(cassette: Location) -> Path:
    """Beside a local cassette; for an ``s3://`` object, in the current folder (named from it)."""
    name = cassette.name
    for suffix in (".json.gz", ".json.zst", ".json"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    if isinstance(cassette, S3Path):
        return Path(name + ".html")
    return cassette.with_name(name + ".html")


def _number(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return max(0.0, float(value))
    return 0.0


def _kind(event: Dict[str, Any]) -> str:
    if isinstance((event.get("result") or {}).get("error"), dict):
        return "error"
    method = str((event.get("signature") or {}).get("method") or "")
    if method in ("COMMAND", "LIST_COLLECTION_NAMES"):
        return "command"
    return "write" if method.startswith(_WRITES) else "read"


def _ticks(total: float) -> List[float]:
    """Round tick values covering 0..total (about 5 to 10 of them)."""
    if total <= 0:
        return [0.0]
    raw = total / 6
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    count = int(total // step)
    return [round(i * step, 6) for i in range(count + 1)]


def _fmt_tick(value: float) -> str:
    return f"{value:g} ms"


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def render(path: Location, document: Dict[str, Any]) -> str:
    """The HTML page of one cassette."""
    calls = events(document)
    session = document.get("session") if isinstance(document.get("session"), dict) else {}
    ends = [_number(e.get("start_offset_ms")) + _number(e.get("duration_ms")) for e in calls]
    total = max([_number(session.get("duration_ms")), *ends, 0.001])
    response = document.get("response") if isinstance(document.get("response"), dict) else {}
    title = describe_request(document)
    status = response.get("status")
    e = html.escape
    rows: List[str] = []

    def bar(start: float, length: float) -> str:
        left = 100.0 * start / total
        width = max(100.0 * length / total, 0.4)
        left = min(left, 100.0 - width)
        return f"left:{left:.3f}%;width:{width:.3f}%"

    request_detail = {
        "request": document.get("request"),
        "response status": status,
        "error": document.get("error"),
        "session": session,
    }
    rows.append(
        f'<details class="row request"><summary><span class="label">{e(title)}</span>'
        f'<span class="track"><span class="bar request" style="{bar(0, total)}"></span></span>'
        f'<span class="dur">{e(ms(session.get("duration_ms")))}</span></summary>'
        f"<pre>{e(_pretty(request_detail))}</pre></details>"
    )
    for event in calls:
        signature = event.get("signature") if isinstance(event.get("signature"), dict) else {}
        method = str(signature.get("method", "?"))
        namespace = str(signature.get("url", "?"))
        kind = _kind(event)
        start, length = _number(event.get("start_offset_ms")), _number(event.get("duration_ms"))
        summary = f"{_summary.arguments(event, 80)} → {_summary.result(event)}"
        detail: Dict[str, Any] = {
            "eid": event.get("eid"),
            "method": method,
            "namespace": namespace,
            "start_offset_ms": event.get("start_offset_ms"),
            "duration_ms": event.get("duration_ms"),
            "arguments": event.get("args"),
            "result": _summary.result(event),
        }
        error = (event.get("result") or {}).get("error")
        if error is not None:
            detail["error"] = error
        rows.append(
            f'<details class="row call {kind}" data-method="{e(method)}" data-eid="{e(str(event.get("eid")))}">'
            f'<summary title="{e(summary)}"><span class="label"><span class="eid">#{e(str(event.get("eid")))}</span> '
            f'<span class="method">{e(method)}</span> <span class="ns">{e(namespace)}</span></span>'
            f'<span class="track"><span class="bar {kind}" style="{bar(start, length)}"></span></span>'
            f'<span class="dur">{e(ms(event.get("duration_ms")))}</span></summary>'
            f'<div class="info">{e(summary)}</div><pre>{e(_pretty(detail))}</pre></details>'
        )
    ticks = "".join(
        f'<span class="tick" style="left:{100.0 * t / total:.3f}%">{e(_fmt_tick(t))}</span>'
        for t in _ticks(total)
    )
    heading = f"{title}" + (f" → {status}" if status is not None else "")
    legend = "".join(
        f'<span class="key"><span class="swatch" style="background:{color}"></span>{name}</span>'
        for name, color in _COLORS.items()
    )
    return _PAGE.format(
        title=e(f"timetracer timeline: {heading}"),
        heading=e(heading),
        source=e(display_path(path)),
        recorded=e(str(session.get("recorded_at", "?"))),
        count=len(calls),
        plural="" if len(calls) == 1 else "s",
        total=e(ms(total)),
        legend=legend,
        ticks=ticks,
        rows="\n".join(rows),
        read=_COLORS["read"],
        write=_COLORS["write"],
        command=_COLORS["command"],
        error=_COLORS["error"],
    )


def run(options: argparse.Namespace) -> int:
    source = location(options.cassette)
    loaded = load(source)
    target = Path(options.output) if options.output else default_output(source)
    if target.is_dir():
        raise CommandError(f"{target}: is a folder; give -o a file name ending in .html")
    try:
        target.write_text(render(loaded.path, loaded.document), encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"{target}: cannot write the timeline ({exc.strerror or exc})") from None
    print(target)
    return EXIT_OK


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px; color: #1d2330; background: #fff; }}
h1 {{ font-size: 20px; margin: 0 0 4px; }}
.meta {{ color: #5a6272; margin-bottom: 12px; }}
.legend .key {{ margin-right: 14px; }}
.swatch {{ display: inline-block; width: 12px; height: 12px; border-radius: 2px; margin-right: 4px; vertical-align: -1px; }}
.axis, .row > summary {{ display: grid; grid-template-columns: 320px 1fr 80px; align-items: center; gap: 8px; }}
.axis {{ margin: 14px 0 4px; color: #5a6272; font-size: 12px; }}
.axis .scale {{ position: relative; height: 16px; border-bottom: 1px solid #c8ccd4; }}
.tick {{ position: absolute; transform: translateX(-50%); white-space: nowrap; }}
.tick:first-child {{ transform: none; }}
.row {{ border-bottom: 1px solid #eef0f3; }}
.row > summary {{ list-style: none; cursor: pointer; padding: 4px 0; }}
.row > summary::-webkit-details-marker {{ display: none; }}
.row > summary:hover, .row[open] > summary {{ background: #f3f6fb; }}
.label {{ white-space: nowrap; overflow: hidden; text-overflow: ellipsis; font-family: ui-monospace, Menlo, Consolas, monospace; }}
.eid {{ color: #8a93a3; }}
.method {{ font-weight: 600; }}
.track {{ position: relative; height: 18px; background: repeating-linear-gradient(90deg, #fafbfc 0, #fafbfc 49px, #f0f2f5 50px); }}
.bar {{ position: absolute; top: 2px; bottom: 2px; border-radius: 3px; min-width: 3px; }}
.bar.request {{ background: #9aa3b2; }}
.bar.read {{ background: {read}; }}
.bar.write {{ background: {write}; }}
.bar.command {{ background: {command}; }}
.bar.error {{ background: {error}; }}
.dur {{ text-align: right; font-variant-numeric: tabular-nums; color: #5a6272; }}
.info {{ margin: 4px 0 0 12px; color: #3b4252; }}
pre {{ margin: 6px 0 10px 12px; padding: 8px; background: #f6f8fa; border-radius: 4px; overflow: auto; max-height: 320px; font-size: 12px; }}
#hover {{ position: fixed; pointer-events: none; background: #1d2330; color: #fff; padding: 4px 8px; border-radius: 4px; font-size: 12px; max-width: 60ch; display: none; }}
</style>
</head>
<body>
<h1>{heading}</h1>
<div class="meta">{source} · recorded {recorded} · {count} call{plural} · {total}</div>
<div class="legend">{legend}</div>
<div class="axis"><span>call</span><span class="scale">{ticks}</span><span></span></div>
<div id="rows">
{rows}
</div>
<div id="hover"></div>
<script>
(function () {{
  var tip = document.getElementById("hover");
  document.querySelectorAll(".row > summary").forEach(function (summary) {{
    summary.addEventListener("mousemove", function (event) {{
      var text = summary.getAttribute("title");
      if (!text) return;
      summary.dataset.tip = text;
      summary.removeAttribute("title");
      tip.textContent = text;
    }});
    summary.addEventListener("mouseenter", function () {{
      tip.textContent = summary.dataset.tip || summary.getAttribute("title") || "";
      tip.style.display = tip.textContent ? "block" : "none";
    }});
    summary.addEventListener("mouseleave", function () {{ tip.style.display = "none"; }});
  }});
  document.addEventListener("mousemove", function (event) {{
    tip.style.left = (event.clientX + 14) + "px";
    tip.style.top = (event.clientY + 14) + "px";
  }});
}})();
</script>
</body>
</html>
"""
