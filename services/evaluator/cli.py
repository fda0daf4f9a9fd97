"""`videophy-bench serve evaluator` / `python -m services.evaluator`: flags, judge loading, serving."""

from __future__ import annotations

import argparse
import asyncio
import functools

from videophy.v1 import evaluator_pb2, evaluator_pb2_grpc

from services.common.arguments import Parser
from services.common.entry import configure_logging, guarded
from services.common.server import run_service
from services.common.settings import add_server_flags, env_flag
from services.common.storage import Storage
from services.evaluator.catalog import judge_names

SERVICE_NAME = evaluator_pb2.DESCRIPTOR.services_by_name["EvaluatorService"].full_name
DEFAULT_PORT = 50052


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        allow_abbrev=False,
        prog="videophy-bench serve evaluator",
        description="Serve the VideoPhy-2 AutoEval judge (or VideoCon-Physics) over gRPC.",
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
    return parser


def _factory(args: argparse.Namespace):
    from services.common.runtime import resolve_device
    from services.evaluator.judge import load_judge

    device = resolve_device(args.device)
    dtype = args.dtype if args.dtype != "auto" else ("bfloat16" if device.startswith("cuda") else "float32")
    return functools.partial(load_judge, args.model, device=device, dtype=dtype, revision=args.revision,
                             lora_checkpoint=args.lora_checkpoint)


async def serve(args: argparse.Namespace, judge_factory=None, on_listening=None) -> None:
    """Serve until SIGTERM/SIGINT. `judge_factory` (no arguments -> Judge) replaces the flags' judge;
    `on_listening(host)` is called once the port is bound, before the judge loads (tests, embedding)."""
    from services.evaluator.service import EvaluatorServicer

    servicer = EvaluatorServicer(judge_factory or _factory(args), Storage(args.storage_root),
                                 capacity=args.max_batch, batch_wait_s=args.batch_wait_ms / 1000.0,
                                 stall_limit_s=args.stall_limit_s)

    def register(server) -> None:
        evaluator_pb2_grpc.add_EvaluatorServiceServicer_to_server(servicer, server)

    await run_service(args, SERVICE_NAME, register, servicer.load, on_listening=on_listening,
                      watchdog=servicer.watchdog)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    def body() -> int:
        configure_logging(args.log_level)
        asyncio.run(serve(args))
        return 0

    return guarded("serve evaluator", body)
