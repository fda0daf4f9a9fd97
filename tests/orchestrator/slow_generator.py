"""A real generator server whose backend sleeps `--delay` seconds per video (a slower replica), and
with `--gate PATH` makes every video after its first wait until PATH exists (a test opens the gate on
an event, e.g. once another replica has work).

python tests/orchestrator/slow_generator.py --delay 0.5 [--gate PATH] [generator flags...]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    pre = argparse.ArgumentParser(allow_abbrev=False, add_help=False)
    pre.add_argument("--delay", type=float, default=0.0)
    pre.add_argument("--gate", type=Path, default=None)
    ns, rest = pre.parse_known_args(argv)
    from videophy_bench.generator.cli import build_parser, make_backend, serve

    args = build_parser().parse_args(rest)
    logging.basicConfig(level="INFO")
    backend = make_backend(args)
    original = backend.generate

    made = 0

    def slow_generate(job, on_step, should_stop):
        nonlocal made
        deadline = time.monotonic() + ns.delay
        # sleep in slices so a cancel still stops at a "step"
        while time.monotonic() < deadline or (ns.gate and made and not ns.gate.exists()):
            time.sleep(0.02)
        made += 1
        return original(job, on_step, should_stop)

    backend.generate = slow_generate
    asyncio.run(serve(args, backend=backend))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
