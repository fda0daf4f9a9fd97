"""Live progress: a rich display on a terminal, plain log lines otherwise (CI, Kubernetes logs)."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable
from typing import Any

from services.orchestrator.items import STATES
from services.orchestrator.status import format_duration

log = logging.getLogger("videophy_bench.progress")

Snapshot = Callable[[], dict[str, Any]]


def line(info: dict[str, Any]) -> str:
    c = info["counts"]
    rate = info["videos_per_hour"]
    states = " ".join(f"{s} {c[s]}" for s in STATES)
    speed = f"{rate:.1f}" if rate else "?"
    return (
        f"{info['done']}/{info['total']} done | {states} | {speed} videos/h | "
        f"ETA {format_duration(info['eta_s'])}"
    )


async def run_progress(
    snapshot: Snapshot, *, interval_s: float = 1.0, log_every_s: float = 30.0, tty: bool | None = None
) -> None:
    """Show progress until cancelled. `snapshot()` returns `status.collect`-style numbers."""
    tty = sys.stderr.isatty() if tty is None else tty
    if not tty:
        last = None
        while True:
            text = line(snapshot())
            if text != last:
                log.info("progress: %s", text)
                last = text
            await asyncio.sleep(log_every_s)
    from rich.console import Console
    from rich.live import Live
    from rich.table import Table

    def render() -> Table:
        info = snapshot()
        table = Table(title="videophy-bench run", show_header=True)
        for s in STATES:
            table.add_column(s, justify="right")
        table.add_column("videos/h", justify="right")
        table.add_column("ETA", justify="right")
        rate = info["videos_per_hour"]
        table.add_row(
            *(str(info["counts"][s]) for s in STATES),
            f"{rate:.1f}" if rate else "?",
            format_duration(info["eta_s"]),
        )
        return table

    with Live(render(), console=Console(stderr=True), refresh_per_second=4, transient=False) as live:
        while True:
            await asyncio.sleep(interval_s)
            live.update(render())
