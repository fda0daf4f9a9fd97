"""The options of one `videophy-bench run` and of its dispatcher, each written once.

Every user-facing option is a dataclass field declared with `cli_field` (services/common/cli_fields.py):
its flag, help, group and conversion live on the field, `add_run_flags` derives the flags of `run`
(and of `refine`, which takes the same ones) and `RunOptions.from_cli_args` builds the object back. The
run never changes these objects: the dispatcher gets a copy with the run's own values
(`DispatchOptions.for_run`). Torch- and grpc-free (the parser of every command imports it).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from videophy_bench.common import judge_tasks
from videophy_bench.common.arguments import port
from videophy_bench.common.cli_fields import add_cli_args, cli_field, cli_values
from videophy_bench.common.openai_chat import EndpointSettings, add_endpoint_flags
from videophy_bench.common.redact import redact_argv
from videophy_bench.evaluator.frame_rule import FrameRule, add_frame_flags
from videophy_bench.orchestrator.tracking.options import TrackingOptions

if TYPE_CHECKING:
    from videophy_bench.common.channel import ClientConfig
    from videophy_bench.orchestrator.items import WorkItem
    from videophy_bench.orchestrator.prompts import PromptSet

DEFAULT_PROMPTS = "videophysics/videophy2_test"
TEST_SET_SOURCE = "videophy2-test"  # `--videos` of the test set's own videos (test_set_videos.py)
# Generator parameters a run may override: (flag, GenerationOverrides field, type).
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

VIDEOS = "existing videos (judge only: no generator is started)"
SELECTION = "selection (not part of the configuration: a run can be extended)"
CONFIGURATION = "configuration (a run directory refuses a different one)"
SERVICES = "services"
DISPATCH = "dispatch"


def family_param(text: str) -> tuple[str, float]:
    """`NAME=VALUE` of --param (the name is checked against the preset's family before anything starts)."""
    name, sep, value = text.partition("=")
    try:
        if not sep or not name.strip():
            raise ValueError
        return name.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=NUMBER (booleans are 0 or 1)") from None


def overrides_of(args: argparse.Namespace) -> dict[str, Any]:
    """The generator overrides given: the OVERRIDES flags, and the family's own (--param) as `extra`."""
    given: dict[str, Any] = {key: getattr(args, key) for _, key, _ in OVERRIDES
                             if getattr(args, key) is not None}
    if getattr(args, "params", None):
        given["extra"] = dict(args.params)
    return given


def _finite_mib(text: str) -> float:
    """--max-video-mb: a finite number (`inf` would overflow the byte count; > 0 is checked by `problem`)."""
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number of MiB")
    return value


def _comma_list(value: str | None) -> list[str] | None:
    return [i.strip() for i in value.split(",") if i.strip()] if value else None


def _tasks(value: str | None) -> tuple[str, ...] | None:
    try:
        return judge_tasks.parse_tasks(value) if value else None
    except ValueError as exc:  # names the unknown task
        raise ValueError(f"--judge-tasks: {exc}") from None


def _default_verify_threads() -> int:
    # PyAV mostly releases the GIL, but each thread competes with the event loop for it whenever the
    # loop waits on a socket or SQLite: few on purpose.
    return max(1, min(4, (os.cpu_count() or 2) // 2))


@dataclass(frozen=True)
class DispatchOptions:
    """How the dispatcher pulls work (services/orchestrator/dispatch.py)."""

    gen_deadline_s: float = cli_field("--item-deadline-s", "deadline of one generation", DISPATCH,
                                      default=3600.0, type=float)
    judge_deadline_s: float = cli_field("--judge-deadline-s", "deadline of one judge call", DISPATCH,
                                        default=900.0, type=float)
    max_attempts: int = cli_field("--max-attempts", "attempts before an item is marked failed", DISPATCH,
                                  default=4, type=int)
    refresh_s: float = cli_field("--refresh-s", "re-resolve replica addresses this often", DISPATCH,
                                 default=10.0, type=float)
    stall_timeout_s: float = cli_field(
        "--stall-timeout-s", "stop (resumably) when no replica of a needed kind is ready this long",
        DISPATCH, default=900.0, type=float)
    drain_grace_s: float = cli_field(
        "--drain-grace-s", "on SIGINT/SIGTERM, let work in flight finish this long before stopping "
        "(default: 30)", DISPATCH, default=30.0, type=float)
    # Set by the run from its own configuration (`for_run`), not flags:
    output_prefix: str = "videos"
    overrides: dict[str, Any] = field(default_factory=dict)
    negative_prompt: str | None = None
    # Requested judge tasks (videophy_bench.common.judge_tasks); a rule task applies only to items
    # with a rule.
    judge_tasks: tuple[str, ...] = ("sa", "pc", "rule")
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    verify_decode: bool = True
    # Send every prompt of the run to each generator when it joins (Prepare), so all embeddings are
    # encoded once up front; best effort: a replica that refuses still encodes on demand.
    prepare_prompts: bool = True
    prepare_batch: int = 64
    prepare_deadline_s: float = 600.0
    verify_threads: int = field(default_factory=_default_verify_threads)  # sha256 + full decode

    @classmethod
    def from_cli_args(cls, args: argparse.Namespace) -> DispatchOptions:
        return cls(**cli_values(cls, args))

    def for_run(self, *, output_prefix: str, overrides: dict[str, Any], negative_prompt: str | None,
                judge_tasks: tuple[str, ...]) -> DispatchOptions:
        """A copy carrying the run's own values (the caller's object is left as it was)."""
        return dataclasses.replace(self, output_prefix=output_prefix, overrides=dict(overrides),
                                   negative_prompt=negative_prompt, judge_tasks=tuple(judge_tasks))


@dataclass(frozen=True)
class DownloadOptions:
    """How `--videos videophy2-test` fetches the videos (services/orchestrator/download.py)."""

    concurrency: int = cli_field("--download-concurrency", "videos fetched at once", VIDEOS, default=8,
                                 type=int)
    timeout_s: float = cli_field(
        "--download-timeout-s", "connect timeout, and the longest wait for a download's next bytes, "
        "before a retry", VIDEOS, default=60.0, type=float)
    attempts: int = cli_field("--download-attempts", "attempts per video and session (backoff between)",
                              VIDEOS, default=5, type=int)
    max_bytes: int = cli_field("--max-video-mb", "size cap of one downloaded video, in MiB", VIDEOS,
                               default=512 * 2**20, type=_finite_mib, cli_default=512.0,
                               convert=lambda mb: int(mb * 2**20))
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0

    @classmethod
    def from_cli_args(cls, args: argparse.Namespace) -> DownloadOptions:
        return cls(**cli_values(cls, args))

    def problem(self) -> str:
        """Why these values cannot work ("" when they can)."""
        if self.concurrency < 1 or self.attempts < 1 or not self.timeout_s > 0 or not self.max_bytes > 0:
            return ("--download-concurrency and --download-attempts must be >= 1, --download-timeout-s and "
                    "--max-video-mb > 0")
        return ""


def _client_config() -> ClientConfig:
    from videophy_bench.common.channel import ClientConfig

    return ClientConfig()


def _models_help() -> str:
    from videophy_bench.generator.presets import PRESETS  # torch-free

    return ("generator preset: what --local starts (default wan2.2-ti2v-5b); with remote generators, "
            f"the preset they must serve; presets: {', '.join(PRESETS)}")


def _judges() -> str:
    from videophy_bench.evaluator.catalog import judge_names  # torch-free

    return ", ".join(judge_names())


@dataclass
class RunOptions:
    """One run: what to judge or generate, into which directory, with which services.

    Fields with a flag are the options of `videophy-bench run`; the others are set by code (`refine`,
    benchmarks, tests)."""

    prompts: str = cli_field(
        "--prompts", "'videophy2' / 'videophysics/videophy2_test' (Hub), 'sample' (bundled), or a CSV path "
        f"(default: {DEFAULT_PROMPTS}; with --videos {TEST_SET_SOURCE} --test-csv PATH, that file)",
        default=DEFAULT_PROMPTS, cli_default=None)
    out: Path = cli_field("--out", "run directory", required=True, convert=Path, default=None)
    prompt_revision: str | None = cli_field("--prompts-revision", "Hub dataset revision to pin", default=None)
    videos: str | None = cli_field(
        "--videos", "judge these videos instead of generating: a CSV in the official inference.py format "
        "(videopath, caption[, rule]; paths relative to the CSV or absolute) or a directory with its "
        f"videos.csv (or only CSV), or '{TEST_SET_SOURCE}': the test set's own leaderboard videos, fetched "
        "by video_url; captions map onto --prompts (docs/orchestrator.md)", VIDEOS,
        default=None, metavar="SOURCE")
    arm: str | None = cli_field(
        "--arm", "--videos: the model's name in results.csv (default: the source's name)", VIDEOS,
        default=None)
    arms: list[str] | None = cli_field(
        "--arms", f"--videos {TEST_SET_SOURCE}: comma list of the test set's models to judge (wan, cogvideo, "
        "cosmos, sora, ray2, hunyuan, videocrafter; default: every model in the file)", VIDEOS,
        default=None, convert=lambda v: [a.strip() for a in v.split(",")] if v is not None else None)
    test_csv: Path | None = cli_field(
        "--test-csv", f"--videos {TEST_SET_SOURCE}: a local videophy2_test.csv (default: the Hub's "
        f"{DEFAULT_PROMPTS}, pinned by --prompts-revision)", VIDEOS, default=None,
        convert=lambda v: Path(v) if v else None)
    storage_root: Path | None = cli_field(
        "--storage-root", "storage root the services share (default: the run directory); --out must be "
        "inside it", env=True, default=None, convert=lambda v: Path(v) if v else None)
    limit: int | None = cli_field("--limit", "first N prompts (after --ids / --hard-only)", SELECTION,
                                  default=None, type=int)
    ids: list[str] | None = cli_field("--ids", "comma-separated prompt ids", SELECTION, default=None,
                                      convert=_comma_list)
    hard_only: bool = cli_field("--hard-only", "only the hard subset", SELECTION, default=False,
                                store_true=True)
    seeds: int = cli_field("--seeds", "videos per prompt (seed derived from run seed + id)", SELECTION,
                           default=1, type=int)
    run_seed: int = cli_field("--seed", "run seed (default: 0)", CONFIGURATION, default=0, type=int)
    upsampled: bool = cli_field(
        "--upsampled", "generate from upsampled_caption (SA is still judged against caption)", CONFIGURATION,
        default=False, store_true=True)
    negative_prompt: str | None = cli_field(
        "--negative-prompt", "default: the model family's official one (Wan's, LTX-Video's; none for "
        "CogVideoX and HunyuanVideo)", CONFIGURATION, default=None)
    # The OVERRIDES flags come here (add_run_flags); `overrides` holds the ones given.
    overrides: dict[str, Any] = field(default_factory=dict)
    model: str | None = cli_field("--model", "", CONFIGURATION, env=True, default=None)  # help: _models_help
    judge_model: str | None = cli_field(
        "--judge-model", "evaluator --local starts (default: tiny with a tiny --model, else "
        "videophy_2_auto); known judges: {judges}, or a local directory or Hub repo id", CONFIGURATION,
        default=None)
    videocon_model: str | None = cli_field(
        "--videocon-model", "--local: also start evaluators of this model for the videocon tasks (e.g. "
        "videocon_physics; default: none, the --judge-model evaluators must serve them, as tiny does); "
        "known judges: {judges}", CONFIGURATION, default=None)
    judge_tasks: tuple[str, ...] | None = cli_field(
        "--judge-tasks", f"comma list of {', '.join(judge_tasks.task_names())} (default: sa,pc plus rule "
        "when the prompt set has rules); each is routed to evaluators that serve it", CONFIGURATION,
        env=True, default=None, convert=_tasks)
    local: bool = cli_field("--local", "start generator/evaluator children on loopback ports", SERVICES,
                            default=False, store_true=True)
    allow_cpu: bool = cli_field(
        "--allow-cpu", "--local: start real (non-tiny) models although no GPU is visible (hours per video)",
        SERVICES, default=False, store_true=True)
    no_judge: bool = cli_field("--no-judge", "generate only", SERVICES, default=False, store_true=True)
    generators: str | None = cli_field("--generators", "host:port list or dns:///headless-service:port",
                                       SERVICES, env=True, default=None)
    evaluators: str | None = cli_field("--evaluators", "host:port list or dns:///headless-service:port",
                                       SERVICES, env=True, default=None)
    local_generators: int | None = cli_field("--local-generators", "--local: generators (default: per GPU)",
                                             SERVICES, default=None, type=int)
    local_evaluators: int | None = cli_field("--local-evaluators", "--local: evaluators (default: per GPU)",
                                             SERVICES, default=None, type=int)
    startup_timeout_s: float = cli_field("--startup-timeout-s", "wait this long for replicas", SERVICES,
                                         default=1800.0, type=float)
    lock_wait_s: float = cli_field(
        "--lock-wait-s", "wait this long for another orchestrator to release the run directory, then exit "
        "75 (retryable; the Kubernetes Job waits 300 s for a rescheduled pod's predecessor)", SERVICES,
        default=0.0, type=float)
    local_restarts: int = cli_field(
        "--local-restarts", "--local: restart a child that exits this many times before the run stops "
        "(default: 3)", SERVICES, default=3, type=int)
    progress: bool | None = cli_field(
        "--no-progress", "plain log lines even on a terminal", DISPATCH, store_true=True, cli_default=False,
        default=None, convert=lambda off: False if off else None)  # None: rich on a TTY, log lines otherwise
    metrics_port: int | None = cli_field(
        "--metrics-port", "serve Prometheus metrics (videophy_pending_items, ...) on this port (0: any free "
        "one)", DISPATCH, env=True, default=None, type=port)
    metrics_addr: str = cli_field("--metrics-addr", "address the metrics server binds", DISPATCH, env=True,
                                  default="0.0.0.0")
    # Set by code:
    metrics_interval_s: float = 1.0
    local_generator_args: list[str] = field(default_factory=list)
    local_evaluator_args: list[str] = field(default_factory=list)
    cache_dir: str | None = None
    client: ClientConfig = field(default_factory=_client_config)
    dispatch: DispatchOptions = field(default_factory=DispatchOptions)
    download: DownloadOptions = field(default_factory=DownloadOptions)
    tracking: TrackingOptions = field(default_factory=TrackingOptions)  # its flags: tracking/options.py
    argv: list[str] = field(default_factory=list)
    # Builds the work items from (prompt set, config hash) instead of the selection (e.g. `refine`).
    items_fn: Callable[[PromptSet, str], list[WorkItem]] | None = None
    # --local with a judge over an endpoint (openai-vlm): where it asks and which frames it sends (flags:
    # EndpointSettings, FrameRule); refine asks the same endpoint for its LLM steps.
    judge_endpoint: EndpointSettings | None = None
    judge_frames: FrameRule = field(default_factory=FrameRule)

    @classmethod
    def from_cli_args(cls, args: argparse.Namespace, argv: list[str]) -> RunOptions:
        """The options `run` (or `refine`) was given. Raises ValueError (one line) on a bad --judge-tasks,
        endpoint or frame flag."""
        from videophy_bench.common.channel import ClientConfig
        from videophy_bench.common.settings import read_token
        from videophy_bench.evaluator.catalog import TINY
        from videophy_bench.orchestrator.runner import DEFAULT_JUDGE, is_tiny_preset

        values = cli_values(cls, args)
        if values["prompts"] is None:  # not given: the test set, from the local copy a test-set run reads
            local = values["videos"] == TEST_SET_SOURCE and values["test_csv"] is not None
            values["prompts"] = str(values["test_csv"]) if local else DEFAULT_PROMPTS
        if values["judge_model"] is None:
            model = values["model"]
            values["judge_model"] = TINY if model and is_tiny_preset(model) else DEFAULT_JUDGE
        return cls(
            **values,
            overrides=overrides_of(args),
            client=ClientConfig(token=read_token(args.auth_token, args.auth_token_file), tls_ca=args.tls_ca,
                                tls_cert=args.tls_cert, tls_key=args.tls_key),
            dispatch=DispatchOptions.from_cli_args(args),
            download=DownloadOptions.from_cli_args(args),
            argv=redact_argv(["videophy-bench", *argv]),  # the API key never reaches the manifest
            judge_endpoint=EndpointSettings.from_cli_args(args),
            judge_frames=FrameRule.from_cli_args(args),
            tracking=TrackingOptions.from_cli_args(args),
        )


def add_run_flags(parser: argparse.ArgumentParser) -> None:
    """Every flag of `videophy-bench run`, derived from the fields above."""
    from videophy_bench.common.settings import env_flag

    groups = add_cli_args(RunOptions, parser)
    for action in parser._actions:  # help texts naming the registries, filled in here
        if action.dest == "model":
            action.help = f"{_models_help()} [env {action.help.split('[env ', 1)[1]}"
        elif action.dest in ("judge_model", "videocon_model"):
            action.help = action.help.replace("{judges}", _judges())
    for flag, key, typ in OVERRIDES:
        groups[CONFIGURATION].add_argument(flag, dest=key, type=typ, default=None,
                                           help="override the preset's value")
    groups[CONFIGURATION].add_argument(
        "--param", dest="params", action="append", type=family_param, default=None, metavar="NAME=VALUE",
        help="a model family's own parameter (repeatable), e.g. use_dynamic_cfg=0 for CogVideoX; "
        "`videophy-bench models` lists each preset's")
    tls = groups[SERVICES]
    env_flag(tls, "--auth-token", default=None, help="bearer token for the services")
    env_flag(tls, "--auth-token-file", default=None, help="file holding the bearer token")
    env_flag(tls, "--tls-ca", default=None, help="PEM CA to verify the services (enables TLS)")
    env_flag(tls, "--tls-cert", default=None, help="PEM client certificate (mTLS)")
    env_flag(tls, "--tls-key", default=None, help="PEM client key (mTLS)")
    add_cli_args(DispatchOptions, parser, groups)
    add_cli_args(DownloadOptions, parser, groups)
    add_frame_flags(parser, add_endpoint_flags(parser, groups))
    add_cli_args(TrackingOptions, parser, groups)
