"""A real tiny evaluator server that serves only some judge tasks, under its own preset name (an
AutoEval-like or VideoCon-like pool for the routing tests).

python tests/orchestrator/task_evaluator.py --tasks videocon_sa,videocon_pc --preset tiny-videocon \\
    [evaluator flags]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import sys


def main(argv: list[str]) -> int:
    pre = argparse.ArgumentParser(allow_abbrev=False, add_help=False)
    pre.add_argument("--tasks", required=True)
    pre.add_argument("--preset", required=True)
    ns, rest = pre.parse_known_args(argv)
    from services.evaluator.cli import build_parser, serve
    from services.evaluator.judge import load_judge

    args = build_parser().parse_args(rest)
    logging.basicConfig(level="INFO")
    tasks = tuple(t for t in ns.tasks.split(",") if t)

    def factory():
        judge = load_judge("tiny", device="cpu", dtype="float32")
        judge.info = dataclasses.replace(judge.info, name=ns.preset, model_id=ns.preset, tasks=tasks)
        return judge

    asyncio.run(serve(args, judge_factory=factory))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
