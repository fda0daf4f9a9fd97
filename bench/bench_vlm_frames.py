"""What the openai-vlm judge costs on its own side: sampling a video's frames (decord decode, resize,
PNG/JPEG data URLs, `videophy_bench.evaluator.vlm.sample_frames`) and the bytes one request carries. The
endpoint's time is the VLM server's and is not measured here.

  OMP_NUM_THREADS=1 python bench/bench_vlm_frames.py [--videos DIR] [--rules 8:448:png,8:448:jpeg]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

from videophy_bench.evaluator.frame_rule import FrameRule
from videophy_bench.evaluator.vlm import sample_frames

SHARED = Path(os.environ.get("VIDEOPHY_SHARED_DIR") or Path(__file__).resolve().parents[1].parent / "shared")
EXAMPLES = SHARED / "data" / "videophy2" / "examples"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(allow_abbrev=False, description=__doc__.split("\n\n")[0])
    p.add_argument("--videos", type=Path, default=EXAMPLES, help="folder of .mp4 (default: the examples)")
    p.add_argument("--rules", default="8:448:png,8:448:jpeg,32:448:png", help="frames:side:format list")
    args = p.parse_args(argv)
    paths = sorted(args.videos.glob("*.mp4"))
    if not paths:
        print(f"bench_vlm_frames: no .mp4 in {args.videos}", file=sys.stderr)
        return 2
    for spec in args.rules.split(","):
        n, side, fmt = spec.split(":")
        rule = FrameRule(int(n), int(side), fmt)
        sample_frames(str(paths[0]), rule)  # warm (imports, decoder)
        seconds, sizes = [], []
        for path in paths:
            frames = sample_frames(str(path), rule)
            seconds.append(frames.seconds)
            sizes.append(sum(len(u) for u in frames.urls))
        print(json.dumps({"rule": rule.describe(), "videos": len(paths),
                          "median_s": round(statistics.median(seconds), 3), "max_s": round(max(seconds), 3),
                          "median_request_mb": round(statistics.median(sizes) / 1e6, 2)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
