"""Render a :class:`document.Report` as one self-contained HTML page.

Everything is inline (CSS, SVG plots); the page loads nothing from the network. Videos use the
``src`` that the caller's ``video_src`` returns (a path relative to the page or a ``data:`` URI); each
figure links its PNG and PDF files (``figures/<id>.png``/``.pdf``, written beside the page). Tables carry
``data-table="<id>"``, figures ``data-figure="<id>"``, galleries ``data-gallery="<id>"`` and A/B pairs
``data-pairs="<id>"`` so that tests and scripts can find them.

Layout: on screen every table sits in a horizontally scrollable container (wide tables scroll, the page
does not); in print (A4 landscape) tables take the page width, cells wrap, and nothing is clipped.
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from pathlib import Path

from . import plots
from .document import (
    NUMERIC_FORMATS,
    Column,
    Figure,
    Report,
    Table,
    Text,
    Video,
    VideoGallery,
    VideoPairs,
    format_cell,
    format_value,
)

VideoSrc = Callable[[Path | None], str | None]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1400px;
padding:1rem 2rem;color:#222;line-height:1.4}
h1{font-size:1.6rem}h2{border-bottom:2px solid #ddd;padding-bottom:.2rem;margin-top:2.2rem}
h3{font-size:1.05rem;margin-bottom:.3rem}
table{border-collapse:collapse;margin:.4rem 0 1rem;font-size:.85rem}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}
tbody tr:nth-child(even){background:#fafafa}
p.warning{background:#fff4e5;border-left:4px solid #f0a030;padding:.4rem .7rem}
p.info{color:#333}p.note{color:#666;font-size:.8rem;margin-top:-.6rem}
figure{margin:.5rem 0 1.5rem}figure svg{max-width:100%;height:auto}
figcaption{font-size:.85rem;color:#555}
.gallery{display:flex;flex-wrap:wrap;gap:1rem}
.card{border:1px solid #ddd;border-radius:6px;padding:.5rem;width:360px;font-size:.8rem}
.card video{width:100%;background:#000}.card .missing{color:#a00}
.pairs{display:flex;flex-direction:column;gap:1rem}
.pair{border:1px solid #ddd;border-radius:6px;padding:.5rem;font-size:.8rem;max-width:960px}
.pair-videos{display:grid;grid-template-columns:1fr 1fr;gap:.6rem;margin-top:.3rem}
.pair-videos video{width:100%;background:#000}.pair-videos .side{min-width:0}
.pair .missing{color:#a00}
nav ul{columns:2;font-size:.9rem}details summary{cursor:pointer;color:#246}
.meta{font-size:.8rem;color:#555;overflow-wrap:anywhere}
.scroll{overflow-x:auto;max-width:100%}
td.text{overflow-wrap:anywhere;min-width:4rem}
@page{size:A4 landscape;margin:10mm}
@media print{
body{max-width:none;margin:0;padding:0;font-size:9pt}
h2{break-after:avoid;margin-top:1.2rem}h3{break-after:avoid}
.scroll{overflow:visible}
table{width:100%;font-size:6.5pt}th,td{padding:1px 3px}
td.num{white-space:normal}
figure,tr,.card,.pair{break-inside:avoid}
nav,video,.links{display:none}
.card{width:30%}
}
"""


def _cell(row: dict, col: Column) -> str:
    if col.fmt_of(row) not in NUMERIC_FORMATS:
        return f'<td class="text">{escape(format_cell(row, col))}</td>'
    # a number may wrap only before its CI: "22.5%" over "[15.9, 30.8]" keeps wide tables narrow
    text = format_cell(row, col).replace(", ", ",\u00a0").replace(" pp", "\u00a0pp")
    return f'<td class="num">{escape(text)}</td>'


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


def _player(video: Video, video_src: VideoSrc) -> str:
    src = video_src(video.path)
    if src:
        return f'<video controls preload="metadata" src="{escape(src)}"></video>'
    return f'<div class="missing">video not available ({escape(str(video.path or "no path"))})</div>'


def _details(video: Video) -> str:
    return " · ".join(f"{escape(k)}: {escape(format_value(v, 'text'))}" for k, v in video.details.items())


def _video_card(video: Video, video_src: VideoSrc) -> str:
    player = _player(video, video_src)
    details = _details(video)
    return (
        f'<div class="card">{player}<div><b>{escape(video.title)}</b></div>'
        f"<div>{escape(video.caption)}</div><div>{details}</div></div>"
    )


def pairs_html(block: VideoPairs, video_src: VideoSrc) -> str:
    """A/B video pairs: per prompt, A's video left and B's right."""
    items = []
    for pair in block.pairs:
        sides = "".join(
            f'<div class="side"><div><b>{escape(label)}</b></div>{_player(video, video_src)}'
            f"<div>{_details(video)}</div></div>"
            for label, video in ((f"A: {block.label_a}", pair.a), (f"B: {block.label_b}", pair.b))
        )
        items.append(
            f'<div class="pair"><div><b>{escape(pair.title)}</b></div><div>{escape(pair.caption)}</div>'
            f'<div class="pair-videos">{sides}</div></div>'
        )
    body = "".join(items) or "(none)"
    return f'<h3>{escape(block.title)}</h3><div class="pairs" data-pairs="{escape(block.id)}">{body}</div>'


def figure_html(block: Figure) -> str:
    """A figure inline as SVG, with links to its PNG and PDF files."""
    links = ", ".join(
        f'<a href="figures/{escape(block.id)}.{fmt}">{fmt.upper()}</a>' for fmt in plots.FILE_FORMATS
    )
    return (
        f'<figure data-figure="{escape(block.id)}">{plots.to_svg(block.plot, block.id)}'
        f'<figcaption>{escape(block.title)} <span class="links">({links})</span></figcaption></figure>'
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
                parts.append(figure_html(block))
            elif isinstance(block, VideoPairs):
                parts.append(pairs_html(block, video_src))
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
