"""`videophy-bench serve generator` / `python -m videophy_bench.generator`: flags, model loading, serving."""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Callable

from videophy_bench.common.arguments import Parser
from videophy_bench.common.entry import configure_logging, guarded
from videophy_bench.common.server import ServiceHost, run_service
from videophy_bench.common.settings import add_server_flags, env_flag
from videophy_bench.common.storage import Storage
from videophy_bench.common.video import DEFAULT_QUALITY
from videophy_bench.generator.acceleration import DEFAULT_PRESET, PRESET_NAMES
from videophy_bench.generator.backend import DECODE_OVERLAP
from videophy_bench.generator.presets import PRESETS, get_preset
from videophy_bench.proto.v1 import generator_pb2, generator_pb2_grpc

SERVICE_NAME = generator_pb2.DESCRIPTOR.services_by_name["GeneratorService"].full_name
DEFAULT_PORT = 50051


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        allow_abbrev=False,
        prog="videophy-bench serve generator",
        description="Serve a text-to-video model (any registered family) over gRPC (GeneratorService, "
        "health, reflection).",
    )
    add_server_flags(parser, DEFAULT_PORT)
    g = parser.add_argument_group("model")
    env_flag(g, "--model", default="tiny", choices=sorted(PRESETS), help="model preset")
    env_flag(g, "--model-path", default=None,
             help="local diffusers directory or Hub repo id (default: the preset's Hub repo; tiny: built)")
    env_flag(g, "--revision", default=None, help="Hub revision (branch, tag or commit) to pin")
    env_flag(g, "--cache-dir", default=None, help="Hub cache directory (default: HF_HOME)")
    env_flag(g, "--device", default="auto", help="auto, cpu, cuda or cuda:N")
    env_flag(g, "--acceleration", default=DEFAULT_PRESET, choices=list(PRESET_NAMES),
             help="acceleration preset (docs/performance.md); fbcache and fp8 are lossy and labelled as such")
    env_flag(g, "--compile", action="store_true", default=False,
             help="force regional torch.compile (the lossless preset already compiles on GPU; warm-up "
                  "compiles before ready)")
    env_flag(g, "--no-compile", action="store_true", default=False,
             help="skip the preset's regional torch.compile")
    env_flag(g, "--no-warmup", action="store_true", default=False, help="report ready without a warm-up run")
    env_flag(g, "--queue-depth", default=1, type=int,
             help="requests that may wait behind the running one (the next item is ready when the device "
                  "frees; GetInfo reports 1 + this as capacity); 0 refuses any second request")
    env_flag(g, "--decode-overlap", default="off", choices=list(DECODE_OVERLAP),
             help="VAE decode of one item beside the next item's denoising (auto: on a GPU when the "
                  "warm-up measured that both fit in memory). Off by default: on an H100 either phase "
                  "saturates the GPU and the overlap saved nothing (docs/performance.md)")
    env_flag(g, "--mp4-quality", default=DEFAULT_QUALITY, type=float, help="imageio-ffmpeg quality 0..10")
    return parser


def make_backend(args: argparse.Namespace):
    from videophy_bench.common.runtime import resolve_device
    from videophy_bench.generator.families import get_backend

    return get_backend(get_preset(args.model), device=resolve_device(args.device), model_path=args.model_path,
                       revision=args.revision, cache_dir=args.cache_dir, compile_blocks=_compile_choice(args),
                       acceleration=args.acceleration)


def _compile_choice(args: argparse.Namespace) -> bool | None:
    """None = the acceleration preset decides (regional compile on GPU)."""
    return False if args.no_compile else (True if args.compile else None)


async def serve(args: argparse.Namespace, backend=None,
                on_listening: Callable[[ServiceHost], None] | None = None) -> None:
    """Bind, load (readiness NOT_SERVING meanwhile), serve until SIGTERM/SIGINT has drained the server.

    `on_listening` gets the host once the port is bound (embedding and tests use it to reach the port
    and `host.drain()`).
    """
    from videophy_bench.generator.engine import GenerationEngine
    from videophy_bench.generator.service import GeneratorServicer

    backend = backend or make_backend(args)
    engine = GenerationEngine(backend, Storage(args.storage_root), mp4_quality=args.mp4_quality,
                              queue_depth=args.queue_depth, decode_overlap=args.decode_overlap,
                              stall_limit_s=args.stall_limit_s)
    servicer = GeneratorServicer(engine)

    def register(server) -> None:
        generator_pb2_grpc.add_GeneratorServiceServicer_to_server(servicer, server)

    await run_service(args, SERVICE_NAME, register,
                      lambda: engine.load_and_warm(warmup=not args.no_warmup), on_listening,
                      watchdog=engine.watchdog)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Both A14B experts resident on 80 GB only fit the VAE decode without fragmentation (bench/).
    os.environ.setdefault("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True")
    def body() -> int:
        configure_logging(args.log_level)
        asyncio.run(serve(args))
        return 0

    return guarded("serve generator", body)
