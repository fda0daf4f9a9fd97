"""Render the report page in headless Chromium, offline, and check that its tables and plots are there,
that nothing is cut off at desktop width and in print, and keep screenshots of both for a person to look at
(in pytest's tmp directory: desktop.png, print.png, report.pdf)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest
from analysis_ledgers import benchmark_rows
from chromium_cdp import CHROMIUM, Chromium, headless_command

from videophy_bench.orchestrator.analysis.cli import report_main

#: A4 landscape less the page's 10 mm margins, in CSS pixels (96 per inch): the width print lays out in
PRINT_WIDTH_PX = round((297 - 2 * 10) / 25.4 * 96)
DESKTOP_WIDTH_PX = 1366

# Every table (collapsed ones opened), its width and its container's; the page's own width; each figure's
# drawn size; and whether each figure's PNG file decodes as an image in the browser.
MEASURE = """(async () => {
  document.querySelectorAll('details').forEach(d => { d.open = true; });
  const root = document.documentElement;
  const tables = [...document.querySelectorAll('table[data-table]')].map(t => ({
    id: t.dataset.table, width: t.scrollWidth, box: t.parentElement.clientWidth,
    right: t.getBoundingClientRect().right, overflowX: getComputedStyle(t.parentElement).overflowX}));
  const figures = await Promise.all([...document.querySelectorAll('figure[data-figure]')].map(async f => {
    const svg = f.querySelector('svg').getBoundingClientRect();
    const link = f.querySelector('a[href$=".png"]');
    const img = new Image(); img.src = link.href;
    let png = 0; try { await img.decode(); png = img.naturalWidth; } catch (e) { png = -1; }
    return {id: f.dataset.figure, width: svg.width, height: svg.height, right: svg.right, png};
  }));
  return {page: root.scrollWidth, viewport: root.clientWidth, tables, figures};
})()"""


class DomCounter(HTMLParser):
    """Counts the elements a rendered report must hold."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[str] = []
        self.figures: list[str] = []
        self.svg_in_figure = 0
        self.videos = 0
        self.rows = 0
        self._figure_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        if tag == "table" and attr.get("data-table"):
            self.tables.append(attr["data-table"] or "")
        elif tag == "figure" and attr.get("data-figure"):
            self.figures.append(attr["data-figure"] or "")
            self._figure_depth += 1
        elif tag == "svg" and self._figure_depth:
            self.svg_in_figure += 1
        elif tag == "video":
            self.videos += 1
        elif tag == "tr":
            self.rows += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "figure" and self._figure_depth:
            self._figure_depth -= 1


needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="/usr/bin/chromium is absent: apt-get install -y chromium chromium-driver to run the browser test",
)


@needs_chromium
def test_report_renders_in_headless_chromium(run_factory, tmp_path):
    base = run_factory(benchmark_rows(60, 5, rng_seed=1), name="base", videos=True)  # 12 prompts per action
    new = run_factory(benchmark_rows(60, 5, rng_seed=2, pass_shift=0.3), name="new", videos=True)
    out = tmp_path / "report"
    assert report_main([str(base), str(new), "--out", str(out), "--bootstrap", "200"]) == 0
    profile = tmp_path / "chromium-profile"
    command = [
        *headless_command(profile),
        "--dump-dom",
        (out / "report.html").resolve().as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    parsed = DomCounter()
    parsed.feed(dom)
    for table in ("overview", "c0_subsets", "c0_taxonomy", "c1_subsets", "cmp1_metrics", "cmp1_subsets"):
        assert table in parsed.tables
    for figure in (
        "joint_by_subset",
        "score_histograms",
        "c0_actions_plot",
        "c1_actions_plot",
        "cmp1_deltas",
    ):
        assert figure in parsed.figures
    assert parsed.svg_in_figure == len(parsed.figures)
    assert parsed.videos >= 2 and parsed.rows > 50
    # the plots hold drawn marks, not empty canvases
    assert len(re.findall(r"<path\b", dom)) > 50
    shutil.rmtree(profile, ignore_errors=True)


@needs_chromium
def test_nothing_is_cut_off_on_screen_or_in_print(run_factory, tmp_path):
    manifest = {"prompt_set": {"n": 590}}
    base = run_factory(benchmark_rows(120, 8, rng_seed=1), name="base", videos=True, manifest=manifest)
    new = run_factory(
        benchmark_rows(120, 8, rng_seed=2, pass_shift=0.3), name="new", videos=True, manifest=manifest
    )
    out = tmp_path / "report"
    assert report_main([str(base), str(new), "--out", str(out), "--bootstrap", "200"]) == 0
    expected = {
        b["id"]
        for s in json.loads((out / "report.json").read_text())["sections"]
        for b in s["blocks"]
        if b["type"] == "figure"
    }
    assert {"c0_actions_plot", "c1_actions_plot", "cmp1_deltas", "joint_by_subset"} <= expected
    url = (out / "report.html").resolve().as_uri()
    with Chromium(tmp_path / "profile") as browser:
        browser.open(url, DESKTOP_WIDTH_PX)
        screen = browser.evaluate(MEASURE)
        browser.screenshot(tmp_path / "desktop.png")
        browser.media("print")
        browser.viewport(PRINT_WIDTH_PX)
        printed = browser.evaluate(MEASURE)
        browser.screenshot(tmp_path / "print.png")
        browser.media("")
        browser.print_pdf(tmp_path / "report.pdf")

    for layout in (screen, printed):
        assert layout["page"] <= layout["viewport"]  # the page itself never scrolls sideways
        assert {f["id"] for f in layout["figures"]} == expected
        for figure in layout["figures"]:  # drawn, inside the page, and its PNG file is an image
            assert figure["width"] > 100 and figure["height"] > 50, figure
            assert figure["right"] <= layout["viewport"] + 1 and figure["png"] > 0, figure
    # on screen a table wider than its container scrolls inside it (its right-hand columns are reachable)
    for table in screen["tables"]:
        assert table["width"] <= table["box"] or table["overflowX"] in ("auto", "scroll"), table
    assert any(t["id"] == "overview" for t in screen["tables"])
    # in print nothing scrolls: every table fits the page width
    for table in printed["tables"]:
        assert table["width"] <= table["box"] + 1 and table["right"] <= printed["viewport"] + 1, table
    pdf = (tmp_path / "report.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page\b", pdf)) >= 3
    assert b"/MediaBox [0 0 841.9" in pdf  # A4 landscape, from the page's @page rule
    for name in ("desktop.png", "print.png"):
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG")
