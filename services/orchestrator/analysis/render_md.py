"""Render a :class:`document.Report` as Markdown (GitHub pipe tables; plots are referenced, not drawn)."""

from __future__ import annotations

from .document import Figure, Report, Table, Text, VideoGallery, format_cell, format_value
from .render_html import VideoSrc


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def table_md(table: Table) -> str:
    """One table as a Markdown pipe table under a bold title."""
    lines = [f"**{_escape(table.title)}**", ""]
    lines.append("| " + " | ".join(_escape(c.label) for c in table.columns) + " |")
    lines.append("| " + " | ".join("---" for _ in table.columns) + " |")
    for row in table.rows:
        lines.append("| " + " | ".join(_escape(format_cell(row, c)) for c in table.columns) + " |")
    if not table.rows:
        lines.append("| (none) |" + " |" * (len(table.columns) - 1))
    if table.note:
        lines += ["", f"_{_escape(table.note)}_"]
    return "\n".join(lines)


def render_md(report: Report, video_src: VideoSrc) -> str:
    """The whole report as Markdown text."""
    out = [f"# {report.title}", ""]
    for block in report.banner:
        out += [("> **Warning:** " if block.kind == "warning" else "") + block.text, ""]
    for key, value in report.meta.items():
        out.append(f"- {key}: {value}")
    for section in report.sections:
        out += ["", f"## {section.title}", ""]
        for block in section.blocks:
            if isinstance(block, Text):
                prefix = "> **Warning:** " if block.kind == "warning" else ""
                out += [prefix + block.text, ""]
            elif isinstance(block, Table):
                out += [table_md(block), ""]
            elif isinstance(block, Figure):
                source = f" (data: `{block.data_table}.csv`)" if block.data_table else ""
                out += [f"_Figure: {block.title} — see report.html{source}._", ""]
            elif isinstance(block, VideoGallery):
                out += [f"**{block.title}**", ""]
                for video in block.videos:
                    src = video_src(video.path)
                    link = (
                        f"[video]({src})" if src and not src.startswith("data:") else "video in report.html"
                    )
                    details = ", ".join(f"{k} {format_value(v, 'text')}" for k, v in video.details.items())
                    out.append(f"- {_escape(video.title)}: {_escape(video.caption)} ({details}) — {link}")
                out.append("")
    return "\n".join(out).rstrip() + "\n"
