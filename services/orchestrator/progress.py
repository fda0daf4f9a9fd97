"""Watching a run: a rich display on a terminal (bar, percentage, elapsed, ETA with the judging tail,
one row per replica), plain log lines otherwise (CI, Kubernetes logs).

Everything shown is read from the ledger (`status.collect`, `status.replica_rows`), so the same
display serves the running orchestrator (`run_progress`) and `videophy-bench status RUN --watch` in
another process or on another machine (`watch`, read-only). While the display is up, log records go
through rich's handler on the same console, so they print above it instead of tearing it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from videophy_bench.orchestrator.items import STATES
from videophy_bench.orchestrator.status import collect, format_duration, replica_rows

log = logging.getLogger("videophy_bench.progress")

Snapshot = Callable[[], dict[str, Any]]
BAR_WIDTH = 40


def progress_info(
    conn: sqlite3.Connection, judging: bool | None, replicas: Iterable[Any], started: float | None
) -> dict[str, Any]:
    """`status.collect` plus `replicas` (rows of `status.replica_rows`; `replicas` are ReplicaInfo
    objects or their dicts) and `started` (epoch of the session, for the elapsed time)."""
    info = collect(conn, judging)
    info["replicas"] = replica_rows(conn, [asdict(r) if is_dataclass(r) else r for r in replicas])
    info["started"] = started
    return info


def fraction(info: dict[str, Any]) -> float:
    """Settled items (done or failed with a reason) over all selected items."""
    total = info["total"]
    return (info["done"] + info["failed"]) / total if total else 1.0


def _elapsed(info: dict[str, Any]) -> str:
    started = info.get("started")
    return format_duration(info["updated"] - started) if started else "?"


def _rate(value: float | None, unit: str) -> str:
    return f"{value:.1f} {unit}/h" if value else f"? {unit}/h"


def line(info: dict[str, Any]) -> str:
    """One log line: `3/8 done (37.5%) | pending 4 ... | elapsed 1m20s | 45.0 videos/h | ETA 2m10s`."""
    c = info["counts"]
    states = " ".join(f"{s} {c[s]}" for s in STATES)
    return (
        f"{info['done']}/{info['total']} done ({fraction(info):.1%}) | {states} | elapsed {_elapsed(info)} | "
        f"{_rate(info['videos_per_hour'], 'videos')} | ETA {format_duration(info['eta_s'])}"
    )


def _ago(epoch: float | None, now: float) -> str:
    return "never" if epoch is None else f"{format_duration(max(0.0, now - epoch))} ago"


def render(info: dict[str, Any], title: str = "videophy-bench run") -> Any:
    """The display of one snapshot: a headline with the bar, then the states and one row per replica."""
    from rich.console import Group
    from rich.progress_bar import ProgressBar
    from rich.table import Table
    from rich.text import Text

    done = info["done"] + info["failed"]
    head = Table.grid(padding=(0, 1))
    head.add_row(
        Text(title, style="bold"),
        ProgressBar(total=max(info["total"], 1), completed=done, width=BAR_WIDTH),
        Text(f"{fraction(info):6.1%}  {info['done']}/{info['total']} done"),
    )
    c = info["counts"]
    failed = f"  [red]{c['failed']} failed[/red]" if c["failed"] else ""
    judged = f"  {_rate(info.get('judged_per_hour'), 'judged')}" if info.get("judging") else ""
    body = Text.from_markup(
        f"elapsed {_elapsed(info)}  ETA {format_duration(info['eta_s'])}  "
        f"{_rate(info['videos_per_hour'], 'videos')}{judged}{failed}\n"
        + "  ".join(f"{s} {c[s]}" for s in STATES)
    )
    parts: list[Any] = [head, body]
    if info.get("replicas"):
        table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
        for name, justify in (("replica", "left"), ("kind", "left"), ("device", "left"),
                              ("current item", "left"), ("s/video", "right"), ("errors", "right"),
                              ("last seen", "right")):
            table.add_column(name, justify=justify)  # type: ignore[arg-type]
        for r in info["replicas"]:
            spv = r["seconds_per_video"]
            table.add_row(
                r["address"],
                r["kind"],
                r["device"] or "?",
                r["current"] or "-",
                f"{spv:.1f}" if spv is not None else "?",
                str(r["errors"]),
                _ago(r["last_seen"], info["updated"]),
            )
        parts.append(table)
    return Group(*parts)


@contextlib.contextmanager
def logs_through(console: Any) -> Iterator[None]:
    """Route the root logger through rich's handler on `console` (the display's), then restore it."""
    from rich.logging import RichHandler

    root = logging.getLogger()
    saved = root.handlers[:]
    handler = RichHandler(console=console, show_path=False, rich_tracebacks=False, markup=False)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    handler.setLevel(root.level)
    root.handlers = [handler]
    try:
        yield
    finally:
        root.handlers = saved


def _console(console: Any, stderr: bool = True) -> Any:
    """`console`, or one on stderr (the run's display, beside its logs) or stdout (`status`)."""
    from rich.console import Console

    return console if console is not None else Console(stderr=stderr)


async def run_progress(
    snapshot: Snapshot,
    *,
    interval_s: float = 1.0,
    log_every_s: float = 30.0,
    tty: bool | None = None,
    console: Any = None,
) -> None:
    """Show progress until cancelled. `snapshot()` returns `progress_info`-style numbers."""
    tty = sys.stderr.isatty() if tty is None else tty
    if not tty:
        last = None
        while True:
            text = line(snapshot())
            if text != last:
                log.info("progress: %s", text)
                last = text
            await asyncio.sleep(log_every_s)
    from rich.live import Live

    console = _console(console)
    with logs_through(console), Live(render(snapshot()), console=console, refresh_per_second=4) as live:
        try:
            while True:
                await asyncio.sleep(interval_s)
                live.update(render(snapshot()))
        finally:
            live.update(render(snapshot()))  # the last numbers stay on screen


def _session_start(manifest: dict[str, Any]) -> float | None:
    sessions = manifest.get("sessions") or []
    return sessions[-1].get("started") if sessions else None


def watch_info(run_dir: Path) -> dict[str, Any]:
    """A snapshot of a run in another process, from its ledger (read-only) and manifest.json."""
    from videophy_bench.orchestrator import manifest as run_manifest
    from videophy_bench.orchestrator.ledger import connect, lock_holder
    from videophy_bench.orchestrator.status import run_state

    man = run_manifest.read(run_dir)
    conn = connect(run_dir, readonly=True)
    try:
        info = progress_info(conn, None, man.get("replicas", []), _session_start(man))
    finally:
        conn.close()
    info["holder"] = lock_holder(run_dir)
    info["state"] = run_state(info, info["holder"])
    return info


def watch(
    run_dir: Path, *, interval_s: float = 2.0, tty: bool | None = None, console: Any = None
) -> dict[str, Any]:
    """`status --watch`: redraw every `interval_s` while an orchestrator holds the run (its lock),
    then once more with the final state (complete / interrupted); Ctrl-C stops watching. Returns the
    last snapshot. On a terminal the rich display, else one line per change."""
    console = _console(console, stderr=False)
    tty = console.is_terminal if tty is None else tty
    title = Path(run_dir).name
    info = watch_info(run_dir)
    if not tty:
        last = None
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                text = f"{info['state']}: {line(info)}"
                if text != last:
                    console.print(text, highlight=False, soft_wrap=True)
                    last = text
                if info["state"] != "running":
                    break
                time.sleep(interval_s)
                info = watch_info(run_dir)
        return info
    from rich.live import Live

    with Live(render(info, title), console=console, refresh_per_second=4) as live:
        with contextlib.suppress(KeyboardInterrupt):
            while info["state"] == "running":
                time.sleep(interval_s)
                info = watch_info(run_dir)
                live.update(render(info, title))
        live.update(render(info, f"{title}: {info['state']}"))
    return info
