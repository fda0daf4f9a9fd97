"""Plots as matplotlib figures (object API, no global pyplot state), rendered by :func:`to_svg` for the
page and :func:`save` for the PNG and PDF files, so all three show the same figure.

Outputs are deterministic (fixed hash salt per figure, no date metadata); SVG keeps text as text, so the
report page needs no external resource. Every plot takes the same rows the report tables hold.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

PALETTE = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c")
_RC = {"svg.fonttype": "none", "font.size": 9, "axes.spines.top": False, "axes.spines.right": False}
#: the file formats every figure is also written in (figures/<id>.<format>)
FILE_FORMATS = ("png", "pdf")
_METADATA = {"svg": {"Date": None}, "pdf": {"CreationDate": None, "ModDate": None}, "png": {"Software": None}}
PNG_DPI = 200


def to_svg(fig: Figure, figure_id: str) -> str:
    """The figure as an inline ``<svg>`` element (text kept as text)."""
    buf = io.StringIO()
    with mpl.rc_context({**_RC, "svg.hashsalt": figure_id}):
        fig.savefig(buf, format="svg", metadata=_METADATA["svg"], bbox_inches="tight")
    text = buf.getvalue()
    start = text.find("<svg")
    return text[start:] if start >= 0 else text


def save(fig: Figure, path: Path, fmt: str) -> None:
    """Write the figure as ``fmt`` (one of :data:`FILE_FORMATS`), cropped as on the page."""
    with mpl.rc_context(_RC):
        fig.savefig(path, format=fmt, metadata=_METADATA[fmt], bbox_inches="tight", dpi=PNG_DPI)


def _new_figure(width: float, height: float) -> Figure:
    with mpl.rc_context(_RC):
        return Figure(figsize=(width, height), layout="constrained")


def _err(value: float, low: float, high: float) -> tuple[float, float]:
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in (value, low, high)):
        return (0.0, 0.0)
    return (max(0.0, value - low), max(0.0, high - value))


def _pct(value: Any) -> float:
    return float("nan") if value is None else 100 * float(value)


def grouped_bars(
    groups: Sequence[str],
    series: Mapping[str, Sequence[dict[str, Any]]],
    value: str,
    low: str,
    high: str,
    ylabel: str,
) -> Figure:
    """Vertical grouped bars (one group per label in ``groups``, one bar per series) with CI error bars.

    ``series`` maps a series name to rows aligned with ``groups``; values are fractions shown as %.
    """
    with mpl.rc_context(_RC):
        fig = _new_figure(max(5.0, 0.9 * len(groups) * max(1, len(series)) + 1.5), 3.4)
        ax = fig.add_subplot()
        x = np.arange(len(groups))
        width = 0.8 / max(1, len(series))
        for i, (name, rows) in enumerate(series.items()):
            heights = [_pct(r.get(value)) for r in rows]
            errs = np.array([_err(*(_pct(r.get(k)) for k in (value, low, high))) for r in rows]).T
            ax.bar(
                x + (i - (len(series) - 1) / 2) * width,
                np.nan_to_num(heights),
                width,
                yerr=errs,
                capsize=3,
                label=name,
                color=PALETTE[i % len(PALETTE)],
            )
        ax.set_xticks(x, [g.replace("category: ", "") for g in groups], rotation=20, ha="right")
        ax.set_ylabel(ylabel)
        ax.set_ylim(0, 100)
        if len(series) > 1:
            ax.legend(fontsize=8, frameon=False)
    return fig


def horizontal_bars(
    rows: Sequence[dict[str, Any]],
    label: str,
    value: str,
    low: str,
    high: str,
    xlabel: str,
    colors: Sequence[str] | None = None,
) -> Figure:
    """Horizontal bars (fractions shown as %), one per row, top to bottom in the given order."""
    with mpl.rc_context(_RC):
        fig = _new_figure(6.5, max(1.6, 0.22 * len(rows) + 0.9))
        ax = fig.add_subplot()
        y = np.arange(len(rows))[::-1]
        widths = [_pct(r.get(value)) for r in rows]
        errs = np.array([_err(*(_pct(r.get(k)) for k in (value, low, high))) for r in rows]).T.reshape(2, -1)
        ax.barh(y, np.nan_to_num(widths), xerr=errs, capsize=2, color=list(colors) if colors else PALETTE[0])
        ax.set_yticks(y, [str(r.get(label)) for r in rows], fontsize=7)
        ax.set_xlabel(xlabel)
        ax.set_xlim(0, 100)
    return fig


def score_histograms(frames: Mapping[str, pd.DataFrame]) -> Figure:
    """Side-by-side SA and PC histograms (share of scored items per score 0..5), one bar per condition."""
    scores = np.arange(0, 6)
    with mpl.rc_context(_RC):
        fig = _new_figure(8.0, 3.0)
        axes = fig.subplots(1, 2, sharey=True)
        width = 0.8 / max(1, len(frames))
        for ax, col in zip(axes, ("sa", "pc"), strict=True):
            for i, (name, df) in enumerate(frames.items()):
                values = df[col].to_numpy(float)
                shares = [float((values == s).mean()) * 100 if len(values) else 0.0 for s in scores]
                ax.bar(
                    scores + (i - (len(frames) - 1) / 2) * width,
                    shares,
                    width,
                    label=name,
                    color=PALETTE[i % len(PALETTE)],
                )
            ax.axvline(3.5, color="#999999", linestyle="--", linewidth=0.8)
            ax.set_xticks(scores)
            ax.set_xlabel(col.upper() + " score")
            ax.set_title(col.upper(), fontsize=9)
        axes[0].set_ylabel("% of scored items")
        if len(frames) > 1:
            axes[1].legend(fontsize=8, frameon=False)
    return fig


def paired_deltas(metric_rows: Sequence[dict[str, Any]], prompts: pd.DataFrame) -> Figure:
    """Left: improved / unchanged / degraded prompts per metric. Right: per-prompt SA and PC differences."""
    with mpl.rc_context(_RC):
        fig = _new_figure(9.0, 3.2)
        left, right = fig.subplots(1, 2, width_ratios=(1.1, 1.0))
        labels = [r["label"] for r in metric_rows]
        y = np.arange(len(metric_rows))[::-1]
        start = np.zeros(len(metric_rows))
        for key, color in (("degraded", "#c44e52"), ("unchanged", "#cccccc"), ("improved", "#55a868")):
            counts = np.array([r[key] for r in metric_rows], dtype=float)
            left.barh(y, counts, left=start, color=color, label=key)
            start += counts
        left.set_yticks(y, labels)
        left.set_xlabel("prompts")
        left.legend(fontsize=7, frameon=False, ncols=3, loc="lower center", bbox_to_anchor=(0.5, 1.0))
        bins = np.arange(-5.25, 5.5, 0.5)
        for i, col in enumerate(("sa_diff", "pc_diff")):
            values = prompts[col].to_numpy(float) if col in prompts else np.array([])
            right.hist(values, bins=bins, alpha=0.6, color=PALETTE[i], label=col.split("_")[0].upper())
        right.axvline(0, color="#333333", linewidth=0.8)
        right.set_xlabel("per-prompt difference B - A")
        right.set_ylabel("prompts")
        right.legend(fontsize=8, frameon=False)
    return fig


def dot_plot(
    rows: Sequence[dict[str, Any]], label: str, value: str, low: str, high: str, xlabel: str
) -> Figure:
    """One dot per row with its CI as a line, top to bottom in the given order (fractions shown as %).

    Readable where bars are not: many rows with wide intervals stay legible as points on lines.
    """
    with mpl.rc_context(_RC):
        fig = _new_figure(6.5, max(1.6, 0.2 * len(rows) + 0.9))
        ax = fig.add_subplot()
        y = np.arange(len(rows))[::-1]
        values = np.array([_pct(r.get(value)) for r in rows])
        lows = np.array([_pct(r.get(low)) for r in rows])
        highs = np.array([_pct(r.get(high)) for r in rows])
        ax.hlines(y, lows, highs, color="#9db4d6", linewidth=2.5)
        ax.plot(values, y, "o", color=PALETTE[0], markersize=4)
        ax.set_yticks(y, [str(r.get(label)) for r in rows], fontsize=7)
        ax.set_xlabel(xlabel)
        ax.set_xlim(-2, 102)
        ax.grid(axis="x", color="#eeeeee", linewidth=0.6)
    return fig
