"""`videophy-bench`: the command users touch.

    videophy-bench run --local --model tiny --prompts sample --limit 4 --out runs/quickstart
    videophy-bench run --prompts videophy2 --out /data/runs/x --generators dns:///gen:50051 --evaluators ...
    videophy-bench status RUN_DIR
    videophy-bench recover RUN_DIR    (rebuild a corrupt ledger from the videos and their sidecars)
    videophy-bench prompts [SOURCE] --out prompts.csv
    videophy-bench models            (generator presets with family and defaults, and the judges)
    videophy-bench serve generator|evaluator ...   judge ...   report ...   leaderboard ...   cluster ...
    videophy-bench refine --run RUN_DIR --rounds 2 --llm-endpoint URL --llm-model NAME [run's flags]
    videophy-bench track RUN_DIR --wandb PROJECT --mlflow URI   push RUN_DIR --repo ID

Subcommands that belong to other packages are imported only when used, so each works with only its
own extra installed. Exit codes (services/orchestrator/exit_codes.py): 0 done, 1 runtime failure,
2 usage or configuration error, 75 run directory still locked after --lock-wait-s (retryable),
130 SIGINT (Ctrl-C), 143 SIGTERM (both drain first: docs/orchestrator.md).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from videophy_bench.common.arguments import (
    Parser,
    RawDescriptionDefaultsHelpFormatter,
    VersionAction,
)
from videophy_bench.common.entry import configure_logging, guarded, print_library_logs_once

USAGE_ERROR = 2

# name -> (module, function, extra to install, one-line help)
DELEGATES: dict[str, tuple[str, str, str, str]] = {
    "judge": (
        "videophy_bench.evaluator.judge_cli",
        "main",
        "evaluator",
        "judge existing videos (official CSV in/out)",
    ),
    "report": (
        "videophy_bench.orchestrator.analysis.cli",
        "report_main",
        "orchestrator",
        "HTML/Markdown report of one or more runs",
    ),
    "leaderboard": (
        "videophy_bench.orchestrator.analysis.cli",
        "leaderboard_main",
        "orchestrator",
        "the human leaderboard from the VideoPhy-2 test set",
    ),
    "refine": (
        "videophy_bench.orchestrator.phyt2v.loop",
        "refine_main",
        "orchestrator",
        "PhyT2V-style prompt refinement rounds on a finished run (LLM/VLM endpoints)",
    ),
    "track": (
        "videophy_bench.orchestrator.tracking.cli",
        "track_main",
        "orchestrator",
        "log run directories to Weights & Biases / MLflow",
    ),
    "push": (
        "videophy_bench.orchestrator.hub_push",
        "push_main",
        "orchestrator",
        "upload a run's results to a Hugging Face Hub dataset repo, with a dataset card",
    ),
    "cluster": (
        "videophy_bench.orchestrator.cluster",
        "cluster_main",
        "orchestrator",
        "run, watch and fetch runs on Kubernetes",
    ),
}
SERVE = {
    "generator": ("videophy_bench.generator.cli", "generator"),
    "evaluator": ("videophy_bench.evaluator.cli", "evaluator"),
}



def _delegate(module: str, func: str, extra: str, argv: list[str]) -> int:
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        print(
            f"videophy-bench: this command needs {module} ({exc}); install it with "
            f"pip install 'videophy-bench[{extra}]'",
            file=sys.stderr,
        )
        return USAGE_ERROR
    return int(getattr(mod, func)(argv) or 0)


def _add_run(sub: argparse._SubParsersAction) -> None:
    from videophy_bench.orchestrator.run_options import add_run_flags

    p = sub.add_parser(
        "run",
        allow_abbrev=False,
        help="generate and judge a prompt set into a run directory (resumable)",
        description="Generate (and judge) every selected prompt into RUN_DIR. Rerunning the same "
        "command resumes: finished items are verified and skipped.",
    )
    add_run_flags(p)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        allow_abbrev=False,
        prog="videophy-bench",
        description=__doc__.split("\n\n")[0],
        formatter_class=RawDescriptionDefaultsHelpFormatter,
    )
    parser.add_argument("--version", action=VersionAction)
    parser.add_argument("--log-level", default="INFO", help="DEBUG also shows tracebacks of errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_run(sub)
    st = sub.add_parser(
        "status", help="counts per state, failures, throughput and ETA of a run", allow_abbrev=False)
    st.add_argument("run_dir")
    st.add_argument("--json", action="store_true", help="everything as JSON")
    st.add_argument(
        "--watch",
        nargs="?",
        const=2.0,
        type=float,
        default=None,
        metavar="SECONDS",
        help="live display (bar, ETA, replicas) redrawn every SECONDS (default 2) while an orchestrator "
        "holds the run; reads the run directory only",
    )
    rc = sub.add_parser(
        "recover",
        help="rebuild a corrupt ledger.sqlite from the run's videos and their sidecars",
        description="Moves the corrupt ledger aside (ledger.sqlite.corrupt-TIMESTAMP) and rebuilds it: "
        "rows it can still read, and one row per video whose sidecar and MP4 agree. Then rerun the "
        "same `run` command: nothing recovered is made again.",
        allow_abbrev=False,
    )
    rc.add_argument("run_dir")
    pr = sub.add_parser("prompts", help="prepare a prompt set (stable ids, content hash)", allow_abbrev=False)
    pr.add_argument(
        "source",
        nargs="?",
        default="videophysics/videophy2_test",
        help="'videophy2' (Hub), 'sample', or a CSV path (default: %(default)s)",
    )
    pr.add_argument("--out", required=True, help="prepared CSV to write (+ OUT.json with the hash)")
    pr.add_argument("--revision", default=None, help="Hub dataset revision to pin")
    pr.add_argument("--cache-dir", default=None, help="Hub cache directory")
    md = sub.add_parser(
        "models", help="list the generator presets (family, pipeline, official defaults) and the judges",
        allow_abbrev=False)
    md.add_argument("--json", action="store_true", help="everything as JSON")
    sv = sub.add_parser(
        "serve",
        help="serve a model: serve generator|evaluator [flags] (see serve X --help)",
        allow_abbrev=False,
    )
    sv.add_argument("service", choices=sorted(SERVE))
    for name, (_, _, _, text) in DELEGATES.items():
        sub.add_parser(name, help=text, add_help=False, allow_abbrev=False)
    return parser


def _run_options(args: argparse.Namespace, argv: list[str]):
    from videophy_bench.orchestrator.run_options import RunOptions

    return RunOptions.from_cli_args(args, argv)


def _cmd_run(args: argparse.Namespace, argv: list[str]) -> int:
    from videophy_bench.evaluator.catalog import OPENAI_VLM, endpoint_judge
    from videophy_bench.orchestrator import exit_codes
    from videophy_bench.orchestrator.interrupt import Interrupted
    from videophy_bench.orchestrator.items import MAX_SEEDS
    from videophy_bench.orchestrator.ledger import ConfigMismatch, LedgerCorrupt, RunLocked
    from videophy_bench.orchestrator.local import LocalServiceError
    from videophy_bench.orchestrator.prompts import PromptSetError
    from videophy_bench.orchestrator.replicas import NoReplicas
    from videophy_bench.orchestrator.runner import UsageError, run_sync

    if not 1 <= args.seeds <= MAX_SEEDS or (args.limit is not None and args.limit < 0):
        print(f"videophy-bench run: --seeds must be in 1..{MAX_SEEDS} and --limit >= 0", file=sys.stderr)
        return USAGE_ERROR
    if args.local_restarts < 0 or args.drain_grace_s < 0 or args.lock_wait_s < 0:
        print("videophy-bench run: --local-restarts, --drain-grace-s and --lock-wait-s must be >= 0",
              file=sys.stderr)
        return USAGE_ERROR
    try:
        opts = _run_options(args, argv)
        judges = (opts.judge_model, opts.videocon_model)
        if opts.judge_endpoint and not any(endpoint_judge(m) for m in judges):
            raise ValueError(f"--llm-endpoint applies to a judge over an endpoint ({OPENAI_VLM}), not "
                             f"--judge-model {opts.judge_model}")
    except ValueError as exc:  # --judge-tasks, the endpoint and frame flags
        print(f"videophy-bench run: {exc}", file=sys.stderr)
        return USAGE_ERROR
    try:
        rc = run_sync(opts)
        if rc == exit_codes.OK:  # on Kubernetes: the run's Job completes, its services' GPUs go back
            from videophy_bench.orchestrator.release import release_after_run

            release_after_run()
        return rc
    except (UsageError, ConfigMismatch, PromptSetError, LedgerCorrupt) as exc:
        print(f"videophy-bench run: {exc}", file=sys.stderr)
        return USAGE_ERROR
    except RunLocked as exc:
        print(f"videophy-bench run: {exc}", file=sys.stderr)
        return exit_codes.LOCKED
    except (NoReplicas, LocalServiceError) as exc:
        print(f"videophy-bench run: {exc}", file=sys.stderr)
        return 1
    except Interrupted as exc:
        print(f"videophy-bench run: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:  # before the signal handlers are installed
        print("videophy-bench run: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


def _cmd_prompts(args: argparse.Namespace) -> int:
    from videophy_bench.orchestrator.prompts import PromptSetError, load_prompt_set, summary_text

    try:
        ps = load_prompt_set(args.source, revision=args.revision, cache_dir=args.cache_dir)
    except PromptSetError as exc:
        print(f"videophy-bench prompts: {exc}", file=sys.stderr)
        return USAGE_ERROR
    meta = ps.write(args.out)
    pinned = f" @ {meta['revision']}" if meta["revision"] else ""
    print(f"{args.out}: {meta['n']} prompts ({meta['n_hard']} hard), sha256 {meta['sha256']}, "
          f"source {meta['source']}{pinned}")
    print(summary_text(meta))
    return 0


def _leading_log_level(argv: list[str]) -> tuple[str | None, list[str]]:
    """`--log-level X` given before a delegated command (which has its own parser): (X, the rest)."""
    if argv[:1] == ["--log-level"] and len(argv) >= 2:
        return argv[1], argv[2:]
    if argv and argv[0].startswith("--log-level="):
        return argv[0].split("=", 1)[1], argv[1:]
    return None, argv


def _dispatch(argv: list[str]) -> tuple[str, Callable[[], int]]:
    """(the command's name for error lines, what runs it)."""
    level, rest = _leading_log_level(argv)
    delegated = None
    if rest and rest[0] in DELEGATES:
        module, func, extra, _ = DELEGATES[rest[0]]
        delegated = (rest[0], module, func, extra, rest[1:])
    elif len(rest) >= 2 and rest[0] == "serve" and rest[1] in SERVE:
        module, extra = SERVE[rest[1]]
        delegated = (f"serve {rest[1]}", module, "main", extra, rest[2:])
    if delegated is not None:
        name, module, func, extra, sub_argv = delegated

        def run_delegate() -> int:
            if level is not None:  # the delegate's own logging setup then keeps this level
                configure_logging(level)
            print_library_logs_once()
            return _delegate(module, func, extra, sub_argv)

        return name, run_delegate
    args = build_parser().parse_args(argv)

    def run_command() -> int:
        configure_logging(args.log_level)
        if args.command == "run":
            return _cmd_run(args, argv)
        if args.command == "status":
            from videophy_bench.orchestrator.status import status_main

            return status_main(args.run_dir, args.json, args.watch)
        if args.command == "prompts":
            return _cmd_prompts(args)
        if args.command == "models":
            from videophy_bench.orchestrator.models import models_main

            return models_main(args.json)
        if args.command == "recover":
            from videophy_bench.orchestrator.recover import recover_main

            return recover_main(args.run_dir)
        return USAGE_ERROR

    return args.command, run_command


def main(argv: Sequence[str] | None = None) -> int:
    name, body = _dispatch(list(sys.argv[1:] if argv is None else argv))
    return guarded(name, body)


if __name__ == "__main__":
    sys.exit(main())
