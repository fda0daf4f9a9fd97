"""`videophy-bench`: the command users touch.

    videophy-bench run --local --model tiny --prompts sample --limit 4 --out runs/quickstart
    videophy-bench run --prompts videophy2 --out /data/runs/x --generators dns:///gen:50051 --evaluators ...
    videophy-bench status RUN_DIR
    videophy-bench recover RUN_DIR    (rebuild a corrupt ledger from the videos and their sidecars)
    videophy-bench prompts [SOURCE] --out prompts.csv
    videophy-bench models            (generator presets with family and defaults, and the judges)
    videophy-bench serve generator|evaluator ...   judge ...   report ...   leaderboard ...   cluster ...
    videophy-bench refine --run RUN_DIR --rounds 2 --llm-endpoint URL --llm-model NAME [run's flags]

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
from pathlib import Path

from services.common import judge_tasks
from services.common.arguments import (
    Parser,
    RawDescriptionDefaultsHelpFormatter,
    VersionAction,
    port,
)
from services.common.entry import configure_logging, guarded, print_library_logs_once
from services.common.settings import env_flag, read_token

USAGE_ERROR = 2

# name -> (module, function, extra to install, one-line help)
DELEGATES: dict[str, tuple[str, str, str, str]] = {
    "judge": (
        "services.evaluator.judge_cli",
        "main",
        "evaluator",
        "judge existing videos (official CSV in/out)",
    ),
    "report": (
        "services.orchestrator.analysis.cli",
        "report_main",
        "orchestrator",
        "HTML/Markdown report of one or more runs",
    ),
    "leaderboard": (
        "services.orchestrator.analysis.cli",
        "leaderboard_main",
        "orchestrator",
        "the human leaderboard from the VideoPhy-2 test set",
    ),
    "refine": (
        "services.orchestrator.phyt2v.loop",
        "refine_main",
        "orchestrator",
        "PhyT2V-style prompt refinement rounds on a finished run (LLM/VLM endpoints)",
    ),
    "cluster": (
        "services.orchestrator.cluster",
        "cluster_main",
        "orchestrator",
        "run, watch and fetch runs on Kubernetes",
    ),
}
SERVE = {
    "generator": ("services.generator.cli", "generator"),
    "evaluator": ("services.evaluator.cli", "evaluator"),
}
OVERRIDES = (
    ("--height", "height", int),
    ("--width", "width", int),
    ("--num-frames", "num_frames", int),
    ("--steps", "num_inference_steps", int),
    ("--guidance-scale", "guidance_scale", float),
    ("--guidance-scale-2", "guidance_scale_2", float),
    ("--flow-shift", "flow_shift", float),
    ("--fps", "fps", int),
)


def family_param(text: str) -> tuple[str, float]:
    """`NAME=VALUE` of --param (the name is checked against the preset's family before anything starts)."""
    name, sep, value = text.partition("=")
    try:
        if not sep or not name.strip():
            raise ValueError
        return name.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=NUMBER (booleans are 0 or 1)") from None


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
    from services.evaluator.catalog import judge_names  # torch-free name lists
    from services.generator.presets import PRESETS

    p = sub.add_parser(
        "run",
        allow_abbrev=False,
        help="generate and judge a prompt set into a run directory (resumable)",
        description="Generate (and judge) every selected prompt into RUN_DIR. Rerunning the same "
        "command resumes: finished items are verified and skipped.",
    )
    p.add_argument(
        "--prompts",
        default="videophysics/videophy2_test",
        help="'videophy2' / 'videophysics/videophy2_test' (Hub), 'sample' (bundled), or a CSV path "
        "(default: %(default)s)",
    )
    p.add_argument("--prompts-revision", default=None, help="Hub dataset revision to pin")
    vid = p.add_argument_group("existing videos (judge only: no generator is started)")
    vid.add_argument(
        "--videos",
        default=None,
        metavar="SOURCE",
        help="judge these videos instead of generating: a CSV in the official inference.py format "
        "(videopath, caption[, rule]; paths relative to the CSV or absolute) or a directory with its "
        "videos.csv (or only CSV); captions map onto --prompts (docs/orchestrator.md)",
    )
    vid.add_argument(
        "--arm", default=None, help="--videos: the model's name in results.csv (default: the source's name)"
    )
    p.add_argument("--out", required=True, help="run directory")
    env_flag(
        p,
        "--storage-root",
        default=None,
        help="storage root the services share (default: the run directory); --out must be inside it",
    )
    sel = p.add_argument_group("selection (not part of the configuration: a run can be extended)")
    sel.add_argument("--limit", type=int, default=None, help="first N prompts (after --ids / --hard-only)")
    sel.add_argument("--ids", default=None, help="comma-separated prompt ids")
    sel.add_argument("--hard-only", action="store_true", help="only the hard subset")
    sel.add_argument(
        "--seeds", type=int, default=1, help="videos per prompt (seed derived from run seed + id)"
    )
    gen = p.add_argument_group("configuration (a run directory refuses a different one)")
    gen.add_argument("--seed", dest="run_seed", type=int, default=0, help="run seed (default: 0)")
    gen.add_argument(
        "--upsampled",
        action="store_true",
        help="generate from upsampled_caption (SA is still judged against caption)",
    )
    gen.add_argument("--negative-prompt", default=None, help="default: the official Wan negative prompt")
    for flag, _, typ in OVERRIDES:
        gen.add_argument(flag, type=typ, default=None, help="override the preset's value")
    gen.add_argument(
        "--param",
        dest="params",
        action="append",
        type=family_param,
        default=None,
        metavar="NAME=VALUE",
        help="a model family's own parameter (repeatable), e.g. use_dynamic_cfg=0 for CogVideoX; "
        "`videophy-bench models` lists each preset's",
    )
    env_flag(
        gen,
        "--model",
        default=None,
        help="generator preset: what --local starts (default wan2.2-ti2v-5b); with remote generators, "
        f"the preset they must serve; presets: {', '.join(PRESETS)}",
    )
    gen.add_argument(
        "--judge-model",
        default=None,
        help="evaluator --local starts (default: tiny with a tiny --model, else videophy_2_auto); "
        f"known judges: {', '.join(judge_names())}, or a local directory or Hub repo id",
    )
    gen.add_argument(
        "--videocon-model",
        default=None,
        help="--local: also start evaluators of this model for the videocon tasks (e.g. videocon_physics; "
        "default: none, the --judge-model evaluators must serve them, as tiny does); "
        f"known judges: {', '.join(judge_names())}",
    )
    env_flag(
        gen,
        "--judge-tasks",
        default=None,
        help=f"comma list of {', '.join(judge_tasks.task_names())} (default: sa,pc plus rule when the "
        "prompt set has rules); each is routed to evaluators that serve it",
    )
    ep = p.add_argument_group("services")
    ep.add_argument(
        "--local", action="store_true", help="start generator/evaluator children on loopback ports"
    )
    ep.add_argument(
        "--allow-cpu",
        action="store_true",
        help="--local: start real (non-tiny) models although no GPU is visible (hours per video)",
    )
    ep.add_argument("--no-judge", action="store_true", help="generate only")
    env_flag(ep, "--generators", default=None, help="host:port list or dns:///headless-service:port")
    env_flag(ep, "--evaluators", default=None, help="host:port list or dns:///headless-service:port")
    ep.add_argument(
        "--local-generators", type=int, default=None, help="--local: generators (default: per GPU)"
    )
    ep.add_argument(
        "--local-evaluators", type=int, default=None, help="--local: evaluators (default: per GPU)"
    )
    ep.add_argument("--startup-timeout-s", type=float, default=1800.0, help="wait this long for replicas")
    ep.add_argument(
        "--lock-wait-s",
        type=float,
        default=0.0,
        help="wait this long for another orchestrator to release the run directory, then exit 75 "
        "(retryable; the Kubernetes Job waits 300 s for a rescheduled pod's predecessor)",
    )
    ep.add_argument(
        "--local-restarts",
        type=int,
        default=3,
        help="--local: restart a child that exits this many times before the run stops (default: 3)",
    )
    env_flag(ep, "--auth-token", default=None, help="bearer token for the services")
    env_flag(ep, "--auth-token-file", default=None, help="file holding the bearer token")
    env_flag(ep, "--tls-ca", default=None, help="PEM CA to verify the services (enables TLS)")
    env_flag(ep, "--tls-cert", default=None, help="PEM client certificate (mTLS)")
    env_flag(ep, "--tls-key", default=None, help="PEM client key (mTLS)")
    dp = p.add_argument_group("dispatch")
    dp.add_argument("--item-deadline-s", type=float, default=3600.0, help="deadline of one generation")
    dp.add_argument("--judge-deadline-s", type=float, default=900.0, help="deadline of one judge call")
    dp.add_argument("--max-attempts", type=int, default=4, help="attempts before an item is marked failed")
    dp.add_argument("--refresh-s", type=float, default=10.0, help="re-resolve replica addresses this often")
    dp.add_argument(
        "--stall-timeout-s",
        type=float,
        default=900.0,
        help="stop (resumably) when no replica of a needed kind is ready this long",
    )
    dp.add_argument(
        "--drain-grace-s",
        type=float,
        default=30.0,
        help="on SIGINT/SIGTERM, let work in flight finish this long before stopping (default: 30)",
    )
    dp.add_argument("--no-progress", action="store_true", help="plain log lines even on a terminal")
    env_flag(
        dp,
        "--metrics-port",
        default=None,
        type=port,
        help="serve Prometheus metrics (videophy_pending_items, ...) on this port (0: any free one)",
    )
    env_flag(dp, "--metrics-addr", default="0.0.0.0", help="address the metrics server binds")


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
    from services.common.channel import ClientConfig
    from services.common.judge_tasks import parse_tasks
    from services.evaluator.catalog import TINY
    from services.orchestrator.dispatch import DispatchOptions
    from services.orchestrator.runner import DEFAULT_JUDGE, RunOptions, is_tiny_preset

    model = args.model
    judge_model = args.judge_model or (TINY if model and is_tiny_preset(model) else DEFAULT_JUDGE)
    return RunOptions(
        prompts=args.prompts,
        out=Path(args.out),
        storage_root=Path(args.storage_root) if args.storage_root else None,
        limit=args.limit,
        ids=[i.strip() for i in args.ids.split(",") if i.strip()] if args.ids else None,
        hard_only=args.hard_only,
        seeds=args.seeds,
        run_seed=args.run_seed,
        upsampled=args.upsampled,
        generators=args.generators,
        evaluators=args.evaluators,
        local=args.local,
        allow_cpu=args.allow_cpu,
        model=model,
        judge_model=judge_model,
        videocon_model=args.videocon_model,
        judge_tasks=parse_tasks(args.judge_tasks) if args.judge_tasks else None,
        no_judge=args.no_judge,
        metrics_port=args.metrics_port,
        metrics_addr=args.metrics_addr,
        overrides={
            **{
                key: getattr(args, flag[2:].replace("-", "_"))
                for flag, key, _ in OVERRIDES
                if getattr(args, flag[2:].replace("-", "_")) is not None
            },
            **({"extra": dict(args.params)} if args.params else {}),
        },
        negative_prompt=args.negative_prompt,
        local_generators=args.local_generators,
        local_evaluators=args.local_evaluators,
        local_restarts=args.local_restarts,
        startup_timeout_s=args.startup_timeout_s,
        lock_wait_s=args.lock_wait_s,
        prompt_revision=args.prompts_revision,
        progress=False if args.no_progress else None,
        client=ClientConfig(
            token=read_token(args.auth_token, args.auth_token_file),
            tls_ca=args.tls_ca,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
        ),
        dispatch=DispatchOptions(
            gen_deadline_s=args.item_deadline_s,
            judge_deadline_s=args.judge_deadline_s,
            max_attempts=args.max_attempts,
            refresh_s=args.refresh_s,
            stall_timeout_s=args.stall_timeout_s,
            drain_grace_s=args.drain_grace_s,
        ),
        argv=["videophy-bench", *argv],
        videos=args.videos,
        arm=args.arm,
    )


def _cmd_run(args: argparse.Namespace, argv: list[str]) -> int:
    from services.orchestrator import exit_codes
    from services.orchestrator.dispatch import NoReplicas
    from services.orchestrator.interrupt import Interrupted
    from services.orchestrator.items import MAX_SEEDS
    from services.orchestrator.ledger import ConfigMismatch, LedgerCorrupt, RunLocked
    from services.orchestrator.local import LocalServiceError
    from services.orchestrator.prompts import PromptSetError
    from services.orchestrator.runner import UsageError, run_sync

    if not 1 <= args.seeds <= MAX_SEEDS or (args.limit is not None and args.limit < 0):
        print(f"videophy-bench run: --seeds must be in 1..{MAX_SEEDS} and --limit >= 0", file=sys.stderr)
        return USAGE_ERROR
    if args.local_restarts < 0 or args.drain_grace_s < 0 or args.lock_wait_s < 0:
        print("videophy-bench run: --local-restarts, --drain-grace-s and --lock-wait-s must be >= 0",
              file=sys.stderr)
        return USAGE_ERROR
    try:
        opts = _run_options(args, argv)
    except ValueError as exc:
        print(f"videophy-bench run: --judge-tasks: {exc}", file=sys.stderr)
        return USAGE_ERROR
    try:
        return run_sync(opts)
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
    from services.orchestrator.prompts import PromptSetError, load_prompt_set, summary_text

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
            from services.orchestrator.status import status_main

            return status_main(args.run_dir, args.json, args.watch)
        if args.command == "prompts":
            return _cmd_prompts(args)
        if args.command == "models":
            from services.orchestrator.models import models_main

            return models_main(args.json)
        if args.command == "recover":
            from services.orchestrator.recover import recover_main

            return recover_main(args.run_dir)
        return USAGE_ERROR

    return args.command, run_command


def main(argv: Sequence[str] | None = None) -> int:
    name, body = _dispatch(list(sys.argv[1:] if argv is None else argv))
    return guarded(name, body)


if __name__ == "__main__":
    sys.exit(main())
