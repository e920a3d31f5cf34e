"""``btfspec report RUN.json --html``: pages rendered from a real campaign's report and real ``stats`` output,
checked for their content and rendered in headless Chromium (screenshot checked by size and non-blankness)."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from btfspec.cli import main as cli
from btfspec.locations import CORPUS_DIR
from btfspec.oracle.fuzz.report_html import histogram_bins, render_html

REAL = CORPUS_DIR / "real" / "6.1.0-47-cloud-amd64"
CHROMIUM = next((p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")) if p), None)


def _btfspec(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "btfspec", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=180)


@pytest.fixture(scope="module")
def campaign_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The JSON report of a real 6-second campaign (the Python reference; P1 tends to find quirk Q2)."""
    tmp = tmp_path_factory.mktemp("campaign")
    res = _btfspec("fuzz", "--impl", "python", "--property", "P1,P2", "--time", "6s", "--workers", "0", "--seed", "3",
                   "--quiet", "--db", "none", "--corpus-dir", str(tmp / "found"), "--report", str(tmp / "run.json"),
                   cwd=tmp)
    assert res.returncode in (0, 1), res.stdout[-2000:] + res.stderr
    return tmp / "run.json"


@pytest.fixture(scope="module")
def stats_json(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real ``btfspec stats --json`` output over the checkout's sample modules (reference implementation)."""
    if not REAL.is_dir():
        pytest.skip(f"{REAL} is not here (an installed copy carries no real kernels)")
    tmp = tmp_path_factory.mktemp("stats")
    res = _btfspec("stats", str(REAL / "modules"), "--base", str(REAL / "vmlinux.btf.zst"), "--impl", "python",
                   "--jobs", "1", "--json", cwd=tmp)
    assert res.returncode == 0, res.stderr
    (tmp / "stats.json").write_text(res.stdout)
    return tmp / "stats.json"


def test_campaign_page(campaign_json: Path, tmp_path: Path) -> None:
    out = tmp_path / "run.html"
    res = CliRunner().invoke(cli, ["report", str(campaign_json), "--html", str(out)])
    assert res.exit_code == 0 and res.output == f"wrote {out}\n", res.output
    page = out.read_text()
    run = json.loads(campaign_json.read_text())
    for heading in ("Setup", "Findings: ", "Throughput", "over time", "Coverage"):
        assert f">{heading}" in page
    for f in run["findings"]:  # every finding: its reproduce command and first difference, escaped
        assert html.escape(f["reproduce"]) in page and html.escape(f["first_difference"]) in page
    for category, values in run["coverage"].items():
        assert f">{category} ({len(values)})</h3>" in page
    # the campaign sampled examples per property as progress came in: one line per property over time
    times = [p["t"] for p in run["timeline"]]
    assert len(times) >= 2 and times == sorted(times) and run["timeline"][-1]["examples"] == run["examples"]
    assert "recorded no timeline" not in page and page.count("<polyline") == len(run["timeline"][-1]["examples"])
    assert "<script" not in page and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert page.count("<svg") >= 2


def test_stats_page_has_the_size_histogram(stats_json: Path, tmp_path: Path) -> None:
    stats = json.loads(stats_json.read_text())
    page = render_html(stats)
    sizes = [r["base_bytes"] for r in stats["rows"] if r["status"] == "ok"]
    assert sum(c for _, _, c in histogram_bins(sizes, 4)) == len(sizes) == stats["distilled"]
    assert "Distilled base size" in page and f"{len(sizes)} modules distilled" in page
    bars = [int(n) for n in re.findall(r"<title>[\d,.]+-[\d,.]+: (\d+)</title>", page)]
    assert len(bars) > 1 and sum(bars) == len(sizes)  # every distilled module in one bar


def test_unreadable_or_foreign_json_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "other.json").write_text('{"hello": 1}')
    for name, message in (("nowhere.json", "-ENOENT (2)"), ("list.json", "a JSON list"),
                          ("other.json", "neither a campaign report")):
        res = CliRunner().invoke(cli, ["report", str(tmp_path / name), "--html", str(tmp_path / "x.html")])
        assert res.exit_code == 2 and message in res.stderr and "Traceback" not in res.output, res.output
        assert len(res.stderr.strip().splitlines()) == 1


# --------------------------------------------------------------------------------------------------
# rendering in a browser
# --------------------------------------------------------------------------------------------------

def png_pixels(data: bytes, max_rows: int) -> tuple[int, int, list[bytes]]:
    """Width, height and the RGB of every 4th pixel of the first ``max_rows`` rows of an 8-bit,
    non-interlaced PNG (what Chromium writes; decoded here, so no imaging library is needed)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        chunk = data[pos + 8:pos + 8 + length]
        header = chunk if kind == b"IHDR" else header
        idat += chunk if kind == b"IDAT" else b""
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", header)
    assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
    bpp = 4 if colour == 6 else 3
    raw, stride, rows, prev = zlib.decompress(idat), width * bpp, [], bytearray(width * bpp)
    for y in range(min(height, max_rows)):
        ftype, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 255
            elif ftype == 2:
                line[i] = (line[i] + b) & 255
            elif ftype == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, [bytes(r[i:i + 3]) for r in rows[::4] for i in range(0, stride, bpp * 4)]


def _screenshot(page: Path, tmp_path: Path, size: str) -> Path:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (scripts/bootstrap.sh installs it when run as root)")
    shot = tmp_path / (page.stem + ".png")
    argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", f"--window-size={size}",
            page.as_uri()]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=120, env={**os.environ, "HOME": str(tmp_path)})
    assert res.returncode == 0 and shot.is_file(), res.stderr[-2000:]
    return shot


@pytest.mark.parametrize("kind", ["campaign", "stats"])
def test_pages_render_in_headless_chromium(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    source: Path = request.getfixturevalue(f"{kind}_json")
    page = tmp_path / f"{kind}.html"
    page.write_text(render_html(json.loads(source.read_text())))
    shot = _screenshot(page, tmp_path, "1200,1600")
    data = shot.read_bytes()
    assert len(data) > 20_000  # a blank 1200x1600 page compresses to a few kB
    width, height, sample = png_pixels(data, 400)  # the top: header, setup or summary, the first chart
    assert (width, height) == (1200, 1600)
    colours = set(sample)
    background = max(colours, key=sample.count)
    assert len(colours) > 20 and sum(1 for p in sample if p != background) > len(sample) // 20
