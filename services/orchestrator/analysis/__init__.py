"""Scores, statistics, comparisons and reports of videophy-bench runs.

Pure CPU: pandas, scipy, scikit-learn, matplotlib.

Input is a run directory as described in ``docs/results-schema.md``. Main entry points:

* :func:`load_run` / :func:`load_results` / :func:`prepare_results` - the one typed loader;
* :func:`summarize` - headline numbers for ``summary.json``;
* :func:`compare` - paired comparison of two conditions;
* :func:`build_report` + :func:`write_report` - the HTML/Markdown/CSV/JSON report;
* :func:`build_leaderboard_report` - the human leaderboard with runs beside it, and the leaderboard on
  one judge (:mod:`.judge_board`: :func:`agreement`, :func:`fit_calibration` / :func:`estimate`,
  :func:`load_published`);
* :mod:`.cli` - ``report_main`` and ``leaderboard_main`` for the ``videophy-bench`` console script.
"""

from .agreement import agreement, cohen_kappa
from .calibration import estimate, fit_calibration
from .export import write_report
from .intervals import cluster_bootstrap, holm, wilson_ci
from .leaderboard import build_leaderboard_report, labels_to_results, read_test_csv
from .loading import Condition, Run, conditions_from_runs, load_results, load_run, prepare_results
from .metrics import summarize
from .paired import compare
from .power import mcnemar_mde, mcnemar_power, mcnemar_sample_size
from .published_scores import load_published
from .report import build_report

__all__ = [
    "Condition",
    "Run",
    "agreement",
    "build_leaderboard_report",
    "build_report",
    "cluster_bootstrap",
    "cohen_kappa",
    "compare",
    "conditions_from_runs",
    "estimate",
    "fit_calibration",
    "holm",
    "labels_to_results",
    "load_published",
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
