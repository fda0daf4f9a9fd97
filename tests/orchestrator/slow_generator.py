"""A real generator server whose backend sleeps `--delay` seconds per video (a slower replica).

python tests/orchestrator/slow_generator.py --delay 0.5 [generator flags...]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time


def main(argv: list[str]) -> int:
    pre = argparse.ArgumentParser(allow_abbrev=False, add_help=False)
    pre.add_argument("--delay", type=float, default=0.0)
    ns, rest = pre.parse_known_args(argv)
    from services.generator.cli import build_parser, make_backend, serve

    args = build_parser().parse_args(rest)
    logging.basicConfig(level="INFO")
    backend = make_backend(args)
    original = backend.generate

    def slow_generate(job, on_step, should_stop):
        deadline = time.monotonic() + ns.delay
        while time.monotonic() < deadline:  # sleep in slices so a cancel still stops at a "step"
            time.sleep(0.02)
        return original(job, on_step, should_stop)

    backend.generate = slow_generate
    asyncio.run(serve(args, backend=backend))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
