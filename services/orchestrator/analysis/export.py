"""Write a :class:`document.Report` to a directory: ``report.html``, ``report.md``, ``report.json`` and
one ``tables/<table id>.csv`` per table, all rendered from the same report object.

Videos: by default the page links each video by a path relative to the output directory (the run
directory must stay where it is; nothing is copied). With ``embed_videos`` files up to
``embed_limit_bytes`` are embedded as ``data:video/mp4;base64`` URIs so the page travels alone.
"""

from __future__ import annotations

import base64
import functools
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from services.common import csvio

from .document import Figure, Report, Table, Text, VideoGallery, is_missing
from .render_html import VideoSrc, render_html
from .render_md import render_md

EMBED_LIMIT_BYTES = 25 * 1024 * 1024


def _plain(value: Any) -> Any:
    """A JSON-safe value: numpy scalars to Python, NaN/NA to None, paths to strings."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if not isinstance(value, str | int | float | bool) and is_missing(value):
        return None
    if not isinstance(value, str | int | float | bool | type(None)):
        return str(value)
    return value


def report_json(report: Report) -> dict[str, Any]:
    """The report as plain data (tables with raw values; figures by id, their numbers are in tables)."""
    sections = []
    for section in report.sections:
        blocks: list[dict[str, Any]] = []
        for block in section.blocks:
            if isinstance(block, Table):
                keys = block.raw_keys()
                blocks.append(
                    {
                        "type": "table",
                        "id": block.id,
                        "title": block.title,
                        "note": block.note,
                        "columns": [
                            {
                                "key": c.key,
                                "label": c.label,
                                "format": c.fmt,
                                "ci": list(c.ci) if c.ci else None,
                            }
                            for c in block.columns
                        ],
                        "rows": [{k: _plain(r.get(k)) for k in keys} for r in block.rows],
                    }
                )
            elif isinstance(block, Text):
                blocks.append({"type": "text", "kind": block.kind, "text": block.text})
            elif isinstance(block, Figure):
                blocks.append(
                    {"type": "figure", "id": block.id, "title": block.title, "data_table": block.data_table}
                )
            elif isinstance(block, VideoGallery):
                blocks.append(
                    {
                        "type": "videos",
                        "id": block.id,
                        "title": block.title,
                        "videos": [
                            {
                                "path": _plain(v.path),
                                "title": v.title,
                                "caption": v.caption,
                                "details": _plain(v.details),
                            }
                            for v in block.videos
                        ],
                    }
                )
        sections.append({"id": section.id, "title": section.title, "blocks": blocks})
    banner = [{"kind": b.kind, "text": b.text} for b in report.banner]
    return {"title": report.title, "banner": banner, "meta": _plain(report.meta), "sections": sections}


def write_table_csv(table: Table, path: Path) -> None:
    keys = table.raw_keys()
    csvio.write_csv(path, keys, ([_plain(row.get(k)) for k in keys] for row in table.rows))


def make_video_src(
    out_dir: Path, embed: bool = False, embed_limit_bytes: int = EMBED_LIMIT_BYTES
) -> VideoSrc:
    """The function turning a video's absolute path into the page's ``src`` (None if the file is absent).

    Memoised: the HTML and Markdown renderers ask for the same videos, which are read (and, with
    ``embed``, base64-encoded) once.
    """

    @functools.cache
    def video_src(path: Path | None) -> str | None:
        if path is None or not Path(path).is_file():
            return None
        path = Path(path)
        if embed and path.stat().st_size <= embed_limit_bytes:
            return "data:video/mp4;base64," + base64.b64encode(path.read_bytes()).decode("ascii")
        return Path(os.path.relpath(path.resolve(), out_dir.resolve())).as_posix()

    return video_src


def write_report(report: Report, out_dir: str | Path, embed_videos: bool = False) -> dict[str, Path]:
    """Write every format of ``report`` into ``out_dir`` (created); returns the paths written."""
    out = Path(out_dir)
    (out / "tables").mkdir(parents=True, exist_ok=True)
    video_src = make_video_src(out, embed=embed_videos)
    paths = {"html": out / "report.html", "md": out / "report.md", "json": out / "report.json"}
    paths["html"].write_text(render_html(report, video_src), encoding="utf-8")
    paths["md"].write_text(render_md(report, video_src), encoding="utf-8")
    data = report_json(report)
    paths["json"].write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
    for table in report.tables():
        write_table_csv(table, out / "tables" / f"{table.id}.csv")
    return paths
