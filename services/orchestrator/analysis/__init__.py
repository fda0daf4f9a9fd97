"""Scores, statistics, comparisons and reports of videophy-bench runs (pure CPU: pandas, scipy, matplotlib).

Input is a run directory as described in ``docs/results-schema.md``. Main entry points:

* :func:`load_run` / :func:`load_results` / :func:`prepare_results` - the one typed loader;
* :func:`summarize` - headline numbers for ``summary.json``;
* :func:`compare` - paired comparison of two conditions;
* :func:`build_report` + :func:`write_report` - the HTML/Markdown/CSV/JSON report;
* :func:`build_leaderboard_report` - the human leaderboard with runs beside it;
* :mod:`.cli` - ``report_main`` and ``leaderboard_main`` for the ``videophy-bench`` console script.
"""

from .export import write_report
from .intervals import cluster_bootstrap, holm, wilson_ci
from .leaderboard import build_leaderboard_report, labels_to_results, read_test_csv
from .loading import Condition, Run, conditions_from_runs, load_results, load_run, prepare_results
from .metrics import summarize
from .paired import compare
from .power import mcnemar_mde, mcnemar_power, mcnemar_sample_size
from .report import build_report

__all__ = [
    "Condition",
    "Run",
    "build_leaderboard_report",
    "build_report",
    "cluster_bootstrap",
    "compare",
    "conditions_from_runs",
    "holm",
    "labels_to_results",
    "load_results",
    "load_run",
    "mcnemar_mde",
    "mcnemar_power",
    "mcnemar_sample_size",
    "prepare_results",
    "read_test_csv",
    "summarize",
    "wilson_ci",
    "write_report",
]
