"""``timetracer timeline``: a self-contained HTML page, checked in a real headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path
from typing import List, Set, Tuple

import pytest

from timetracer.cassette.storage import write_cassette
from timetracer.config import Compression

from .conftest import Recorded, assert_one_line_error, cli


def chromium() -> str:
    """The Chromium binary; missing: a failure under CI=true, else a skip."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    message = "Chromium is not installed (Debian: apt-get install -y chromium)"
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(f"{message}; CI=true, so this fails", pytrace=False)
    pytest.skip(message)


def run_chromium(*args: str) -> subprocess.CompletedProcess:
    command = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def png_pixels(data: bytes) -> Tuple[int, int, List[Tuple[int, ...]]]:
    """Width, height and RGB(A) pixels of an 8-bit, non-interlaced PNG (what Chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks, header = 8, b"", b""
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks += body
        pos += 12 + length
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and interlace == 0 and color in (2, 6), (depth, color, interlace)
    channels = 3 if color == 2 else 4
    raw = zlib.decompress(chunks)
    stride = width * channels
    rows: List[bytearray] = []
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                predictor = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[i] = (line[i] + predictor) & 0xFF
        rows.append(line)
        previous = line
    pixels = [tuple(row[x * channels : x * channels + 3]) for row in rows for x in range(width)]
    return width, height, pixels


def test_timeline_is_one_self_contained_page_with_every_call(shop_copy: Recorded, tmp_path: Path) -> None:
    source = shop_copy.find("GET__products")
    run = cli("timeline", str(source))
    assert run.returncode == 0, run.stderr
    page = source.with_name("GET__products.html")
    assert run.stdout.strip() == str(page)  # default: beside the cassette
    text = page.read_text(encoding="utf-8")
    # No external script, style, font or image.
    assert not re.search(r"<(link|img|iframe|object|embed)\b", text, re.I)
    assert not re.search(r"\b(src|href)\s*=", text, re.I)
    assert not re.search(r"url\(|@import|@font-face", text, re.I)
    assert not re.search(r"https?://", text)

    # A cassette with several calls, one of them an error, and gzip-compressed.
    document = shop_copy.document("GET__products")
    first = document["events"][0]
    second = {**first, "eid": 2, "start_offset_ms": first["start_offset_ms"] + first["duration_ms"]}
    second["signature"] = {**first["signature"], "method": "COUNT_DOCUMENTS"}
    third = {**first, "eid": 3, "start_offset_ms": second["start_offset_ms"] + 1.0}
    third["signature"] = {**first["signature"], "method": "INSERT_ONE"}
    third["result"] = {
        "status": 1,
        "body": {"captured": False, "data": None},
        "error": {"type": "pymongo.errors.DuplicateKeyError", "message": "E11000", "code": 11000},
    }
    document["events"] = [first, second, third]
    document["session"]["duration_ms"] = third["start_offset_ms"] + third["duration_ms"] + 1
    many = write_cassette(tmp_path / "many.json.gz", document, Compression.GZIP)
    out = tmp_path / "out" / "timeline.html"
    out.parent.mkdir()
    run = cli("timeline", str(many), "-o", str(out))
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == str(out)

    dom = run_chromium("--dump-dom", out.as_uri())
    assert dom.returncode == 0, dom.stderr
    methods = re.findall(r'<details class="row call [a-z]+" data-method="([A-Z_]+)"', dom.stdout)
    assert methods == ["FIND", "COUNT_DOCUMENTS", "INSERT_ONE"]
    assert 'class="row call error" data-method="INSERT_ONE"' in dom.stdout
    assert "DuplicateKeyError (code 11000)" in dom.stdout
    assert "shop.products" in dom.stdout

    shot = tmp_path / "shot.png"
    snap = run_chromium(f"--screenshot={shot}", "--window-size=1000,500", out.as_uri())
    assert snap.returncode == 0, snap.stderr
    width, height, pixels = png_pixels(shot.read_bytes())
    assert (width, height) == (1000, 500)
    colors: Set[Tuple[int, ...]] = set(pixels)
    assert len(colors) > 20, len(colors)  # not blank: text, bars, legend

    def near(rgb: Tuple[int, int, int]) -> int:
        return sum(1 for p in pixels if all(abs(a - b) <= 6 for a, b in zip(p, rgb)))

    assert near((0x2F, 0x6F, 0xDE)) > 300  # the blue read bars (FIND, COUNT_DOCUMENTS)
    assert near((0xD1, 0x34, 0x3B)) > 100  # the red error bar (INSERT_ONE)


def test_timeline_bad_input(shop_copy: Recorded, tmp_path: Path) -> None:
    missing = tmp_path / "missing.json"
    assert_one_line_error(cli("timeline", str(missing)), str(missing), "no such file")
    (tmp_path / "empty.json").write_text("")
    assert_one_line_error(cli("timeline", str(tmp_path / "empty.json")), "empty.json", "empty")
    source = str(shop_copy.find("GET__products"))
    assert_one_line_error(cli("timeline", source, "-o", str(tmp_path)), str(tmp_path), "is a folder")
    target = tmp_path / "no" / "such" / "dir" / "t.html"
    assert_one_line_error(cli("timeline", source, "-o", str(target)), str(target), "cannot write")
