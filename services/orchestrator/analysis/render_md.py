"""Render a :class:`document.Report` as Markdown (GitHub pipe tables; plots as the PNG files written
beside it, ``figures/<id>.png``)."""

from __future__ import annotations

from .document import Figure, Report, Table, Text, Video, VideoGallery, VideoPairs, format_cell, format_value
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


def _link(video: Video, video_src: VideoSrc) -> str:
    src = video_src(video.path)
    return f"[video]({src})" if src and not src.startswith("data:") else "video in report.html"


def _details(video: Video) -> str:
    return ", ".join(f"{k} {format_value(v, 'text')}" for k, v in video.details.items())


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
                source = f" (data: `tables/{block.data_table}.csv`)" if block.data_table else ""
                out += [
                    f"![{_escape(block.title)}](figures/{block.id}.png)",
                    "",
                    f"_{block.title}{source}._",
                    "",
                ]
            elif isinstance(block, VideoGallery):
                out += [f"**{block.title}**", ""]
                for video in block.videos:
                    out.append(
                        f"- {_escape(video.title)}: {_escape(video.caption)} ({_details(video)}) — "
                        f"{_link(video, video_src)}"
                    )
                out.append("")
            elif isinstance(block, VideoPairs):
                out += [f"**{block.title}**", ""]
                for pair in block.pairs:
                    out.append(
                        f"- {_escape(pair.title)}: {_escape(pair.caption)} — A ({_details(pair.a)}) "
                        f"{_link(pair.a, video_src)}; B ({_details(pair.b)}) {_link(pair.b, video_src)}"
                    )
                out.append("")
    return "\n".join(out).rstrip() + "\n"
