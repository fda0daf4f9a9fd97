"""`videophy-bench track RUN [RUN ...] --wandb PROJECT --mlflow URI`: log existing run directories.

The same record and backends as `run --wandb/--mlflow` at the end of a run (tracking/__init__.py);
logging a run directory again updates its tracked run (ids kept in RUN/tracking.json).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from videophy_bench.common.arguments import Parser
from videophy_bench.common.cli_fields import add_cli_args
from videophy_bench.common.entry import configure_logging

USAGE_ERROR = 2
log = logging.getLogger(__name__)


def _parser() -> Parser:
    p = Parser(prog="videophy-bench track", description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="run directories")
    p.add_argument("--log-level", default="INFO", help="DEBUG also shows tracebacks of tracker errors")
    from videophy_bench.orchestrator.tracking.options import TrackingOptions

    add_cli_args(TrackingOptions, p)
    return p


def track_main(argv: list[str]) -> int:
    from videophy_bench.orchestrator import tracking
    from videophy_bench.orchestrator.ledger import LedgerCorrupt
    from videophy_bench.orchestrator.tracking.options import TrackingOptions
    from videophy_bench.orchestrator.tracking.record import NotARun, refresh_exports, tracked_run

    args = _parser().parse_args(argv)
    configure_logging(args.log_level)
    opts = TrackingOptions.from_cli_args(args)
    name = "videophy-bench track"
    if not opts.targets:
        print(f"{name}: give --wandb PROJECT and/or --mlflow URI", file=sys.stderr)
        return USAGE_ERROR
    if opts.track_name and len(args.runs) > 1:
        print(f"{name}: --track-name names one run; give one RUN with it", file=sys.stderr)
        return USAGE_ERROR
    try:
        tracking.check(opts)
        for run_dir in args.runs:  # exports rewritten from the ledger first, as status and report do
            note = refresh_exports(run_dir)
            if note:
                log.warning("%s", note)
        for run_dir in args.runs:  # every directory readable before anything is logged
            tracked_run(run_dir, n_videos=0)
    except (tracking.TrackingUnavailable, NotARun, LedgerCorrupt) as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return USAGE_ERROR
    ok = [tracking.log_run(run_dir, opts) for run_dir in args.runs]
    return 0 if all(ok) else 1
