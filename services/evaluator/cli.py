"""`videophy-bench serve evaluator` / `python -m videophy_bench.evaluator`: flags, judge loading, serving."""

from __future__ import annotations

import argparse
import asyncio
import functools
import sys

from videophy_bench.common.arguments import Parser
from videophy_bench.common.entry import configure_logging, guarded
from videophy_bench.common.openai_chat import EndpointSettings, add_endpoint_flags
from videophy_bench.common.server import run_service
from videophy_bench.common.settings import add_server_flags, env_flag
from videophy_bench.common.storage import Storage
from videophy_bench.evaluator.catalog import endpoint_judge, judge_names
from videophy_bench.evaluator.frame_rule import FrameRule, add_frame_flags
from videophy_bench.proto.v1 import evaluator_pb2, evaluator_pb2_grpc

SERVICE_NAME = evaluator_pb2.DESCRIPTOR.services_by_name["EvaluatorService"].full_name
DEFAULT_PORT = 50052


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        allow_abbrev=False,
        prog="videophy-bench serve evaluator",
        description="Serve the VideoPhy-2 AutoEval judge (or VideoCon-Physics, or the AutoEval rubric "
        "asked of a VLM endpoint) over gRPC.",
    )
    add_server_flags(parser, DEFAULT_PORT)
    g = parser.add_argument_group("judge")
    env_flag(g, "--model", default="tiny",
             help=f"{', '.join(judge_names())} (services/evaluator/catalog.py), a Hub repo id or a local dir")
    env_flag(g, "--revision", default=None, help="Hub revision to pin")
    env_flag(g, "--device", default="auto", help="auto, cpu, cuda or cuda:N")
    env_flag(g, "--dtype", default="auto", choices=["auto", "bfloat16", "float32"],
             help="auto = bfloat16 on GPU (as the official script), float32 on CPU")
    env_flag(g, "--lora-checkpoint", default=None, help="extra LoRA weights applied with peft")
    env_flag(g, "--max-batch", default=4, type=int, help="videos judged per forward (= concurrent calls)")
    env_flag(g, "--batch-wait-ms", default=50.0, type=float, help="how long to gather a batch")
    add_frame_flags(parser, add_endpoint_flags(parser))  # --model openai-vlm
    return parser


def _endpoint_options(args: argparse.Namespace) -> dict:
    """`endpoint` and `frames` of an endpoint judge, checked (ValueError: one line); {} for the others,
    which refuse --llm-endpoint rather than ignore it."""
    if not endpoint_judge(args.model):
        if args.llm_endpoint:
            raise ValueError(f"--llm-endpoint applies to judges over an endpoint, not --model {args.model}")
        return {}
    settings = EndpointSettings.from_cli_args(args)
    if settings is None:
        raise ValueError(f"--model {args.model} needs --llm-endpoint URL and --llm-model NAME")
    return {"endpoint": settings, "frames": FrameRule.from_cli_args(args)}


def _factory(args: argparse.Namespace, endpoint: dict):
    from videophy_bench.common.runtime import resolve_device
    from videophy_bench.evaluator.judge import load_judge

    if endpoint:  # checked against the endpoint before serving (main)
        return functools.partial(load_judge, args.model, check=False, **endpoint)
    device = resolve_device(args.device)
    dtype = args.dtype if args.dtype != "auto" else ("bfloat16" if device.startswith("cuda") else "float32")
    return functools.partial(load_judge, args.model, device=device, dtype=dtype, revision=args.revision,
                             lora_checkpoint=args.lora_checkpoint)


async def serve(args: argparse.Namespace, judge_factory=None, on_listening=None,
                endpoint: dict | None = None) -> None:
    """Serve until SIGTERM/SIGINT. `judge_factory` (no arguments -> Judge) replaces the flags' judge;
    `on_listening(host)` is called once the port is bound, before the judge loads (tests, embedding)."""
    from videophy_bench.evaluator.engine import EvaluationEngine
    from videophy_bench.evaluator.service import EvaluatorServicer

    if judge_factory is None:
        judge_factory = _factory(args, _endpoint_options(args) if endpoint is None else endpoint)
    engine = EvaluationEngine(judge_factory, Storage(args.storage_root), capacity=args.max_batch,
                              batch_wait_s=args.batch_wait_ms / 1000.0, stall_limit_s=args.stall_limit_s)
    servicer = EvaluatorServicer(engine)

    def register(server) -> None:
        evaluator_pb2_grpc.add_EvaluatorServiceServicer_to_server(servicer, server)

    await run_service(args, SERVICE_NAME, register, engine.load, on_listening=on_listening,
                      watchdog=engine.watchdog)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    def body() -> int:
        configure_logging(args.log_level)
        try:
            endpoint = _endpoint_options(args)
        except ValueError as exc:
            print(f"videophy-bench serve evaluator: {exc}", file=sys.stderr)
            return 2
        if endpoint:  # an endpoint that cannot answer is one line before the port is bound
            from videophy_bench.common.openai_chat import ChatClient

            ChatClient.from_settings(endpoint["endpoint"]).check()
        asyncio.run(serve(args, endpoint=endpoint))
        return 0

    return guarded("serve evaluator", body)
