"""Command-line entry points for ``videophy-bench report`` and ``videophy-bench leaderboard``.

Both return a process exit code: 0 on success, 2 on bad input (missing run directory or file,
unreadable CSV), after printing the reason to stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from videophy_bench.common.arguments import Parser
from videophy_bench.common.hub import HubUnavailable
from videophy_bench.orchestrator.prompts import download_videophy2

from .export import write_report
from .intervals import DEFAULT_BOOTSTRAP, DEFAULT_SEED
from .leaderboard import build_leaderboard_report, labels_to_results, match_human, read_test_csv
from .loading import conditions_from_runs, load_run
from .published_scores import HUB_REPO, PublishedScores, load_published
from .report import build_report
from .rounds import PRIMARY_CHOICES

AUTO = "auto"


def _published(spec: str, test, conditions: list) -> tuple[PublishedScores | None, str]:
    """(published scores or None, why they are absent); an explicit source that fails raises."""
    if spec == "none":
        return None, "The published per-video AutoEval scores were not read (--published-scores none)."
    if spec != AUTO:
        return load_published(spec), ""
    if not any(len(match_human(c.df, test)[0]) for c in conditions):
        return None, ""
    try:
        return load_published("hub"), ""
    except (HubUnavailable, ValueError) as exc:
        return None, (
            "The published per-video AutoEval scores could not be read, so none are compared: "
            f"{exc}"
        )


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, type=Path, help="output directory (created)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="bootstrap RNG seed (default 0)")
    parser.add_argument(
        "--bootstrap",
        type=int,
        default=DEFAULT_BOOTSTRAP,
        help="bootstrap resamples (default 10000; 0 disables bootstrap CIs)",
    )
    parser.add_argument("--arm", default=None, help="only this arm of each run")
    parser.add_argument("--round", dest="round_", type=int, default=None, help="only this round of each run")
    parser.add_argument(
        "--label",
        action="append",
        default=None,
        help="label per run, in order (default: manifest name or directory name)",
    )


def report_parser() -> argparse.ArgumentParser:
    parser = Parser(
        allow_abbrev=False,
        prog="videophy-bench report",
        description="Scores, statistics and an HTML/Markdown/CSV/JSON report of one or more runs. "
        "With several runs (or arms/rounds), each later one is compared, paired by prompt, with the first.",
    )
    parser.add_argument("runs", nargs="+", type=Path, help="run directories (or results.csv files)")
    _common(parser)
    parser.add_argument("--top-k", type=int, default=10, help="rows in best/worst tables (default 10)")
    parser.add_argument(
        "--primary-round",
        choices=PRIMARY_CHOICES,
        default="last",
        help="for the rounds of one refined run: the round reported as the result (default: the last; "
        "best: the best joint score, labelled as selected after the fact)",
    )
    parser.add_argument(
        "--embed-videos",
        action="store_true",
        help="embed worst videos as data URIs (default: link them by relative path)",
    )
    parser.add_argument("--title", default=None)
    return parser


def leaderboard_parser() -> argparse.ArgumentParser:
    parser = Parser(
        allow_abbrev=False,
        prog="videophy-bench leaderboard",
        description="The human VideoPhy-2 leaderboard computed from videophy2_test.csv, with runs beside it.",
    )
    parser.add_argument("runs", nargs="*", type=Path, help="run directories to put beside the leaderboard")
    parser.add_argument(
        "--test-csv",
        type=Path,
        default=None,
        help="local videophy2_test.csv (default: download videophysics/videophy2_test from the Hub)",
    )
    parser.add_argument(
        "--published-scores",
        default=AUTO,
        metavar="PATH|hub|none",
        help="the authors' per-video AutoEval scores to reproduce: a CSV file or directory, 'hub' "
        f"({HUB_REPO}), or 'none'; default: from the Hub when a run judged leaderboard videos, "
        "noted in the report (not an error) when the Hub cannot give them",
    )
    _common(parser)
    return parser


def _conditions(args: argparse.Namespace) -> list:
    labels = args.label or []
    if labels and len(labels) != len(args.runs):
        raise ValueError(f"{len(labels)} --label values for {len(args.runs)} runs")
    runs = [load_run(path, labels[i] if labels else None) for i, path in enumerate(args.runs)]
    return conditions_from_runs(runs, arm=args.arm, round_=args.round_)


def report_main(argv: Sequence[str] | None = None) -> int:
    """``videophy-bench report RUN [RUN ...] --out DIR [--seed N] [--bootstrap N]``."""
    args = report_parser().parse_args(argv)
    try:
        conditions = _conditions(args)
        report = build_report(
            conditions, n_boot=args.bootstrap, seed=args.seed, top_k=args.top_k, title=args.title,
            primary_round=args.primary_round,
        )
    except (FileNotFoundError, ValueError) as exc:
        print(f"videophy-bench report: {exc}", file=sys.stderr)
        return 2
    paths = write_report(report, args.out, embed_videos=args.embed_videos)
    print(f"report written: {paths['html']} (+ report.md, report.json, tables/, figures/, latex/, videos/)")
    return 0


def leaderboard_main(argv: Sequence[str] | None = None) -> int:
    """``videophy-bench leaderboard [--test-csv PATH] [--published-scores PATH|hub|none] [RUN ...]
    --out DIR``."""
    args = leaderboard_parser().parse_args(argv)
    try:
        test_path = args.test_csv if args.test_csv is not None else download_videophy2()[0]
        test = labels_to_results(read_test_csv(test_path))
        conditions = _conditions(args) if args.runs else []
        published, note = _published(args.published_scores, test, conditions)
        report = build_leaderboard_report(
            test, conditions, n_boot=args.bootstrap, seed=args.seed, source=str(test_path),
            published=published, published_note=note,
        )
    except (FileNotFoundError, ValueError, HubUnavailable) as exc:
        print(f"videophy-bench leaderboard: {exc}", file=sys.stderr)
        return 2
    paths = write_report(report, args.out)
    print(f"leaderboard written: {paths['html']} (+ report.md, report.json, tables/*.csv)")
    return 0
