"""`python -m videophy_bench.common.weights generator|evaluator`: fill the weights cache, load nothing.

The prefetch Job of `videophy-bench cluster run` (services/orchestrator/pinning.py) runs this in the
service's own image with the service's own configuration (VIDEOPHY_MODEL, VIDEOPHY_MODEL_PATH,
VIDEOPHY_REVISION, HF_HOME): it calls the very resolution the replicas call at start-up, so the cache
then holds exactly the snapshot they read with HF_HUB_OFFLINE=1. Prints `<repo-or-dir> <revision>`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from videophy_bench.common.entry import guarded


def generator_weights() -> tuple[Path, str]:
    from videophy_bench.generator.cli import build_parser
    from videophy_bench.generator.diffusers_backend import resolve_model_dir
    from videophy_bench.generator.presets import get_preset

    args = build_parser().parse_args([])
    preset = get_preset(args.model)
    return resolve_model_dir(preset, args.model_path, args.revision, args.cache_dir)


def evaluator_weights() -> tuple[Path, str]:
    from videophy_bench.evaluator.catalog import judge_spec
    from videophy_bench.evaluator.cli import build_parser
    from videophy_bench.evaluator.model.loading import resolve_checkpoint

    args = build_parser().parse_args([])
    spec = judge_spec(args.model)
    directory = resolve_checkpoint((spec.model_id if spec else "") or args.model, args.revision)
    return directory, args.revision or directory.name


SERVICES = {"generator": generator_weights, "evaluator": evaluator_weights}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0] not in SERVICES:
        print(f"usage: python -m videophy_bench.common.weights {{{','.join(SERVICES)}}}", file=sys.stderr)
        return 2

    def body() -> int:
        path, revision = SERVICES[argv[0]]()
        print(f"{path} {revision}")
        return 0

    return guarded(f"prefetch {argv[0]} weights", body)


if __name__ == "__main__":
    sys.exit(main())
