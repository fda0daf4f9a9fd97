"""Render report tables as LaTeX ``table`` floats with booktabs rules, for pasting into a paper.

Cells are the same text as on the page (:func:`document.format_cell`), escaped for LaTeX; captions,
labels and notes are escaped too. A fragment needs ``\\usepackage{booktabs}`` and
``\\usepackage{graphicx}`` (a table wider than the text is scaled down to ``\\linewidth``, never up).
"""

from __future__ import annotations

import re

from .document import NUMERIC_FORMATS, Table, format_cell

# LaTeX's special characters in text mode, and the few non-ASCII characters the report writes.
_ESCAPES = {
    ">=": r"$\geq$",
    "<=": r"$\leq$",
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "—": "---",
    "–": "--",
    "…": r"\ldots{}",
    "\n": " ",
}
_ESCAPE_RE = re.compile("|".join(re.escape(c) for c in sorted(_ESCAPES, key=len, reverse=True)))


def escape_latex(text: str) -> str:
    """``text`` safe in LaTeX text mode (special characters escaped, newlines as spaces)."""
    return _ESCAPE_RE.sub(lambda m: _ESCAPES[m.group(0)], text)


def latex_label(table_id: str) -> str:
    """The ``\\label`` key of a table: ``tab:`` and its id reduced to letters, digits and dashes."""
    return "tab:" + re.sub(r"[^A-Za-z0-9-]+", "-", table_id)


def table_latex(table: Table, context: str = "") -> str:
    """One table as a booktabs ``table`` float; ``context`` (e.g. the report title) goes in a comment."""
    align = "".join("r" if c.fmt in NUMERIC_FORMATS else "l" for c in table.columns)
    head = " & ".join(escape_latex(c.label) for c in table.columns)
    body = [" & ".join(escape_latex(format_cell(r, c)) for c in table.columns) + r" \\" for r in table.rows]
    if not table.rows:
        body = [rf"\multicolumn{{{len(table.columns)}}}{{l}}{{(none)}} \\"]
    lines = [
        f"% {escape_latex(context or table.title)} ({table.id}); needs \\usepackage{{booktabs,graphicx}}",
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{escape_latex(table.title)}}}",
        rf"\label{{{latex_label(table.id)}}}",
        r"\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{%",
        rf"\begin{{tabular}}{{{align}}}",
        r"\toprule",
        head + r" \\",
        r"\midrule",
        *body,
        r"\bottomrule",
        r"\end{tabular}%",
        "}",
    ]
    if table.note:
        lines += [r"\par\smallskip", rf"{{\footnotesize {escape_latex(table.note)}\par}}"]
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"
