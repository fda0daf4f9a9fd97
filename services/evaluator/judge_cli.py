"""``videophy-bench judge``: drop-in replacement of the official ``VIDEOPHY2/inference.py``.

Reads the official input CSVs (``sa``: videopath, caption; ``pc``: videopath; ``rule``: videopath, rule) and
writes
the official output (input columns + float ``score``, pandas index as the first column) plus ``raw_text`` and
``parse_status``. Rows the official script would crash on (bad video, parser crash) get an empty score and a
status instead; the exit code is then 1. Video paths are taken as given (as the official script does), else
relative to ``--video-root`` or the CSV's folder.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import pandas as pd

from services.evaluator.errors import JudgeError, JudgeInputError
from services.evaluator.judge import JudgeQuery, load_judge

log = logging.getLogger(__name__)
TEXT_COLUMN = {"sa": "caption", "pc": None, "rule": "rule"}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        allow_abbrev=False, prog="videophy-bench judge", description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True, help="local dir, Hub repo id, videophy_2_auto or tiny")
    p.add_argument("--task", choices=("sa", "pc", "rule"), default="sa")
    p.add_argument("--input-csv", required=True)
    p.add_argument("--output-csv", required=True)
    p.add_argument("--dtype", choices=("bfloat16", "float32"), default="bfloat16")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--lora-checkpoint", default=None)
    p.add_argument("--video-root", default=None)
    p.add_argument("--revision", default=None)
    return p


def _resolve_video(path: str, roots: list[Path]) -> str:
    if Path(path).exists():
        return path
    for root in roots:
        if (root / path).exists():
            return str(root / path)
    return path  # let the judge raise VideoNotFoundError


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    csv_path = Path(args.input_csv)
    try:
        df = pd.read_csv(csv_path)
    except (OSError, pd.errors.ParserError) as exc:
        print(f"error: cannot read {csv_path}: {exc}", file=sys.stderr)
        return 2
    needed = ["videopath"] + ([TEXT_COLUMN[args.task]] if TEXT_COLUMN[args.task] else [])
    missing = [c for c in needed if c not in df.columns]
    if missing:
        print(f"error: {csv_path} lacks column(s) {missing} needed by task {args.task}", file=sys.stderr)
        return 2
    try:
        judge = load_judge(
            args.checkpoint,
            device=args.device,
            dtype=args.dtype,
            revision=args.revision,
            lora_checkpoint=args.lora_checkpoint,
        )
    except JudgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    roots = [Path(r) for r in (args.video_root,) if r] + [csv_path.parent, csv_path.parent.parent]
    items = []
    for _, row in df.iterrows():
        text_col = TEXT_COLUMN[args.task]
        text = "" if text_col is None or pd.isna(row[text_col]) else str(row[text_col])
        items.append((_resolve_video(str(row["videopath"]), roots), [JudgeQuery(args.task, text)]))
    scores, texts, statuses = [], [], []
    failures = 0
    for (path, _), result in judge.judge_stream(items, batch_size=max(1, args.batch_size)):
        if isinstance(result, JudgeInputError):
            failures += 1
            log.warning("row %s: %s", path, result)
            scores.append(float("nan"))
            texts.append(str(result))
            statuses.append("input_error")
            continue
        answer = result.answers[0]
        if answer.score is None:
            failures += 1
        scores.append(float("nan") if answer.score is None else float(answer.score))
        texts.append(answer.raw_text)
        statuses.append(answer.parse_status)
    judge.close()
    out = df.copy()
    out["score"] = scores
    out["raw_text"] = texts
    out["parse_status"] = statuses
    out.to_csv(args.output_csv)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
