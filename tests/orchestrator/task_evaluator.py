"""A real tiny evaluator server that serves only some judge tasks, under its own preset name (an
AutoEval-like or VideoCon-like pool for the routing tests).

python tests/orchestrator/task_evaluator.py --tasks videocon_sa,videocon_pc --preset tiny-videocon \\
    [--fail-on TEXT] [evaluator flags]

With `--fail-on`, a forward whose queries mention TEXT raises a plain error (INTERNAL to the caller), as
an unexpected judge fault would.
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
    pre.add_argument("--fail-on", default="")
    ns, rest = pre.parse_known_args(argv)
    from videophy_bench.evaluator.cli import build_parser, serve
    from videophy_bench.evaluator.judge import load_judge

    args = build_parser().parse_args(rest)
    logging.basicConfig(level="INFO")
    tasks = tuple(t for t in ns.tasks.split(",") if t)

    def factory():
        judge = load_judge("tiny", device="cpu", dtype="float32")
        judge.info = dataclasses.replace(judge.info, name=ns.preset, model_id=ns.preset, tasks=tasks)
        if ns.fail_on:
            real = judge.judge_batch

            def judge_batch(items):
                if any(ns.fail_on in q.text for _, queries in items for q in queries):
                    raise RuntimeError(f"injected judge fault on {ns.fail_on!r}")
                return real(items)

            judge.judge_batch = judge_batch
        return judge

    asyncio.run(serve(args, judge_factory=factory))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
