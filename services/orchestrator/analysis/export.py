"""Write a :class:`document.Report` to a directory: ``report.html``, ``report.md``, ``report.json``,
one ``tables/<table id>.csv`` per table, ``figures/<figure id>.png`` and ``.pdf`` per figure and
``latex/<table id>.tex`` for the tables marked ``latex``, all rendered from the same report object.

Videos: the videos the report shows (worst videos, A/B pairs) are put into ``videos/`` of the output
directory, hard-linked when the run is on the same filesystem (no space used) and copied otherwise,
and the page links them there, so the report folder can be moved or shared as a whole. A video already
inside the output directory is linked where it is. With ``embed_videos`` files up to
``embed_limit_bytes`` are embedded as ``data:video/mp4;base64`` URIs so the page travels alone.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import math
import os
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from videophy_bench.common import csvio

from . import plots
from .document import Figure, Report, Table, Text, Video, VideoGallery, VideoPairs, is_missing
from .render_html import VideoSrc, render_html
from .render_latex import table_latex
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


def _video_json(video: Video) -> dict[str, Any]:
    return {
        "path": _plain(video.path),
        "title": video.title,
        "caption": video.caption,
        "details": _plain(video.details),
    }


def figure_files(figure: Figure) -> list[str]:
    """The figure's files, relative to the output directory."""
    return [f"figures/{figure.id}.{fmt}" for fmt in plots.FILE_FORMATS]


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
                    {
                        "type": "figure",
                        "id": block.id,
                        "title": block.title,
                        "data_table": block.data_table,
                        "files": figure_files(block),
                    }
                )
            elif isinstance(block, VideoGallery):
                blocks.append(
                    {
                        "type": "videos",
                        "id": block.id,
                        "title": block.title,
                        "videos": [_video_json(v) for v in block.videos],
                    }
                )
            elif isinstance(block, VideoPairs):
                blocks.append(
                    {
                        "type": "video_pairs",
                        "id": block.id,
                        "title": block.title,
                        "label_a": block.label_a,
                        "label_b": block.label_b,
                        "pairs": [
                            {
                                "title": p.title,
                                "caption": p.caption,
                                "a": _video_json(p.a),
                                "b": _video_json(p.b),
                            }
                            for p in block.pairs
                        ],
                    }
                )
        sections.append({"id": section.id, "title": section.title, "blocks": blocks})
    banner = [{"kind": b.kind, "text": b.text} for b in report.banner]
    return {"title": report.title, "banner": banner, "meta": _plain(report.meta), "sections": sections}


def write_table_csv(table: Table, path: Path) -> None:
    keys = table.raw_keys()
    csvio.write_csv(path, keys, ([_plain(row.get(k)) for k in keys] for row in table.rows))


def report_video_name(source: Path) -> str:
    """The name of a video in the report's ``videos/``: its file name (made safe) and a hash of its
    absolute path, so two runs' ``p0001.mp4`` do not collide and a rewrite maps to the same name."""
    digest = hashlib.sha256(str(source).encode("utf-8")).hexdigest()[:10]
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", source.stem)[:60]
    return f"{stem}-{digest}{source.suffix.lower() or '.mp4'}"


def place_video(source: Path, out_dir: Path) -> Path:
    """Hard-link (or, across filesystems, copy) ``source`` into ``out_dir/videos``; returns the new path."""
    dest = out_dir / "videos" / report_video_name(source)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:  # another filesystem, or links not supported
        shutil.copyfile(source, tmp)
    os.replace(tmp, dest)
    return dest


def make_video_src(
    out_dir: Path, embed: bool = False, embed_limit_bytes: int = EMBED_LIMIT_BYTES
) -> VideoSrc:
    """The function turning a video's absolute path into the page's ``src`` (None if the file is absent):
    a ``data:`` URI with ``embed``, else a path relative to ``out_dir`` of the video placed in its
    ``videos/`` (:func:`place_video`).

    Memoised: the HTML and Markdown renderers ask for the same videos, which are placed (or read and
    base64-encoded) once.
    """
    out = out_dir.resolve()

    @functools.cache
    def video_src(path: Path | None) -> str | None:
        if path is None or not Path(path).is_file():
            return None
        source = Path(path).resolve()
        if embed and source.stat().st_size <= embed_limit_bytes:
            return "data:video/mp4;base64," + base64.b64encode(source.read_bytes()).decode("ascii")
        placed = source if source.is_relative_to(out) else place_video(source, out)
        return placed.relative_to(out).as_posix()

    return video_src


def write_report(report: Report, out_dir: str | Path, embed_videos: bool = False) -> dict[str, Path]:
    """Write every format of ``report`` into ``out_dir`` (created); returns the paths written."""
    out = Path(out_dir)
    for folder in ("tables", "figures", "latex"):
        (out / folder).mkdir(parents=True, exist_ok=True)
    video_src = make_video_src(out, embed=embed_videos)
    paths = {"html": out / "report.html", "md": out / "report.md", "json": out / "report.json"}
    paths["html"].write_text(render_html(report, video_src), encoding="utf-8")
    paths["md"].write_text(render_md(report, video_src), encoding="utf-8")
    data = report_json(report)
    paths["json"].write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
    for table in report.tables():
        write_table_csv(table, out / "tables" / f"{table.id}.csv")
        if table.latex:
            (out / "latex" / f"{table.id}.tex").write_text(table_latex(table, report.title), encoding="utf-8")
    for figure in report.figures():
        for fmt in plots.FILE_FORMATS:
            plots.save(figure.plot, out / "figures" / f"{figure.id}.{fmt}", fmt)
    return paths
