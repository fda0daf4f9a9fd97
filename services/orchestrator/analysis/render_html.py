"""Render a :class:`document.Report` as one self-contained HTML page.

Everything is inline (CSS, SVG plots); the page loads nothing from the network. Videos use the
``src`` that the caller's ``video_src`` returns (a relative path or a ``data:`` URI). Tables carry
``data-table="<id>"``, figures ``data-figure="<id>"`` and galleries ``data-gallery="<id>"`` so that tests
and scripts can find them.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from pathlib import Path

from .document import Column, Figure, Report, Table, Text, Video, VideoGallery, format_cell, format_value

VideoSrc = Callable[[Path | None], str | None]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1200px;
padding:1rem 2rem;color:#222;line-height:1.4}
h1{font-size:1.6rem}h2{border-bottom:2px solid #ddd;padding-bottom:.2rem;margin-top:2.2rem}
h3{font-size:1.05rem;margin-bottom:.3rem}
table{border-collapse:collapse;margin:.4rem 0 1rem;font-size:.85rem}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tbody tr:nth-child(even){background:#fafafa}
p.warning{background:#fff4e5;border-left:4px solid #f0a030;padding:.4rem .7rem}
p.info{color:#333}p.note{color:#666;font-size:.8rem;margin-top:-.6rem}
figure{margin:.5rem 0 1.5rem}figure svg{max-width:100%;height:auto}
figcaption{font-size:.85rem;color:#555}
.gallery{display:flex;flex-wrap:wrap;gap:1rem}
.card{border:1px solid #ddd;border-radius:6px;padding:.5rem;width:360px;font-size:.8rem}
.card video{width:100%;background:#000}.card .missing{color:#a00}
nav ul{columns:2;font-size:.9rem}details summary{cursor:pointer;color:#246}
.meta{font-size:.8rem;color:#555}.scroll{overflow-x:auto}
"""

_NUMERIC = {"pct", "pp", "num2", "num3", "signed2", "signed3", "int", "pvalue"}


def _cell(row: dict, col: Column) -> str:
    cls = ' class="num"' if col.fmt in _NUMERIC else ""
    return f"<td{cls}>{escape(format_cell(row, col))}</td>"


def table_html(table: Table) -> str:
    """One table (with its title and note)."""
    head = "".join(f"<th>{escape(c.label)}</th>" for c in table.columns)
    if table.rows:
        body = "".join("<tr>" + "".join(_cell(r, c) for c in table.columns) + "</tr>" for r in table.rows)
    else:
        body = f'<tr><td colspan="{len(table.columns)}">(none)</td></tr>'
    html = (
        f'<div class="scroll"><table data-table="{escape(table.id)}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )
    note = f'<p class="note">{escape(table.note)}</p>' if table.note else ""
    title = escape(table.title)
    if table.collapsed:
        return f"<details><summary>{title} ({len(table.rows)} rows)</summary>{html}{note}</details>"
    return f"<h3>{title}</h3>{html}{note}"


def _video_card(video: Video, video_src: VideoSrc) -> str:
    src = video_src(video.path)
    if src:
        player = f'<video controls preload="metadata" src="{escape(src)}"></video>'
    else:
        player = f'<div class="missing">video not available ({escape(str(video.path or "no path"))})</div>'
    details = " · ".join(f"{escape(k)}: {escape(format_value(v, 'text'))}" for k, v in video.details.items())
    return (
        f'<div class="card">{player}<div><b>{escape(video.title)}</b></div>'
        f"<div>{escape(video.caption)}</div><div>{details}</div></div>"
    )


def render_html(report: Report, video_src: VideoSrc) -> str:
    """The whole page as a string."""
    parts = [f"<h1>{escape(report.title)}</h1>"]
    parts += [f'<p class="{escape(b.kind)}" data-banner>{escape(b.text)}</p>' for b in report.banner]
    if report.meta:
        meta = "; ".join(f"{escape(str(k))}: {escape(str(v))}" for k, v in report.meta.items())
        parts.append(f'<p class="meta">{meta}</p>')
    parts.append(
        "<nav><ul>"
        + "".join(f'<li><a href="#{escape(s.id)}">{escape(s.title)}</a></li>' for s in report.sections)
        + "</ul></nav>"
    )
    for section in report.sections:
        parts.append(f'<section id="{escape(section.id)}"><h2>{escape(section.title)}</h2>')
        for block in section.blocks:
            if isinstance(block, Text):
                parts.append(f'<p class="{escape(block.kind)}">{escape(block.text)}</p>')
            elif isinstance(block, Table):
                parts.append(table_html(block))
            elif isinstance(block, Figure):
                parts.append(
                    f'<figure data-figure="{escape(block.id)}">{block.svg}'
                    f"<figcaption>{escape(block.title)}</figcaption></figure>"
                )
            elif isinstance(block, VideoGallery):
                cards = "".join(_video_card(v, video_src) for v in block.videos)
                parts.append(
                    f'<h3>{escape(block.title)}</h3><div class="gallery" '
                    f'data-gallery="{escape(block.id)}">{cards or "(none)"}</div>'
                )
        parts.append("</section>")
    body = "\n".join(parts)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(report.title)}</title><style>{_CSS}</style></head>\n<body>\n{body}\n</body></html>\n"
    )
