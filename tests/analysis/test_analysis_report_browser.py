"""Render the report page in headless Chromium, offline, and check that its tables and plots are there."""

from __future__ import annotations

import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from analysis_ledgers import benchmark_rows

from services.orchestrator.analysis.cli import report_main

CHROMIUM = Path("/usr/bin/chromium")


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


@pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="/usr/bin/chromium is absent: apt-get install -y chromium chromium-driver to run the browser test",
)
def test_report_renders_in_headless_chromium(run_factory, tmp_path):
    base = run_factory(benchmark_rows(60, 20, rng_seed=1), name="base", videos=True)
    new = run_factory(benchmark_rows(60, 20, rng_seed=2, pass_shift=0.3), name="new", videos=True)
    out = tmp_path / "report"
    assert report_main([str(base), str(new), "--out", str(out), "--bootstrap", "200"]) == 0
    profile = tmp_path / "chromium-profile"
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
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
