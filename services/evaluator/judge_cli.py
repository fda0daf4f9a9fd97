"""``videophy-bench judge``: drop-in replacement of the official ``VIDEOPHY2/inference.py``.

Takes the official options in either spelling (``--input_csv`` or ``--input-csv``, ``--output_csv``,
``--checkpoint``, ``--task``, ``--lora_checkpoint``, ``--batch_size``, ``--num_frames``). Reads the official
input CSVs (``sa``: videopath, caption; ``pc``: videopath; ``rule``: videopath, rule) and writes the
official output (input columns + float ``score``, pandas index as the first column) plus ``raw_text``
and ``parse_status``, through
``videophy_bench.common.csvio``: every cell reads back exactly as it was (quotes,
``\\r``, NUL, undecodable bytes). Unlike the official script it judges every row (not the first 20) and a
row it would crash on (bad video, parser crash) gets an empty score and a status instead; the exit code
is then 1. Video paths are taken as given (as the official script does), else relative to
``--video-root`` or the CSV's folder. Runs on the GPU when there is one.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any

import torch

from videophy_bench.common import csvio
from videophy_bench.common.arguments import Parser
from videophy_bench.evaluator.errors import JudgeError, JudgeInputError
from videophy_bench.evaluator.judge import JudgeQuery, load_judge
from videophy_bench.evaluator.model.frames import NUM_FRAMES

log = logging.getLogger(__name__)
TEXT_COLUMN = {"sa": "caption", "pc": None, "rule": "rule"}
ADDED_COLUMNS = ("score", "raw_text", "parse_status")
LOG_EVERY = 10  # without a terminal: one progress line per this many videos
INTERRUPTED = 130


def _positive(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return n


def _parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="videophy-bench judge", description=__doc__.splitlines()[0], allow_abbrev=False
    )
    p.add_argument("--checkpoint", required=True, help="local dir, Hub repo id, videophy_2_auto or tiny")
    p.add_argument("--task", choices=tuple(TEXT_COLUMN), default="sa")
    # Each official underscore option is accepted as is (same meaning) beside our hyphenated spelling.
    p.add_argument("--input-csv", "--input_csv", dest="input_csv", required=True, metavar="PATH")
    p.add_argument("--output-csv", "--output_csv", dest="output_csv", required=True, metavar="PATH")
    p.add_argument("--lora-checkpoint", "--lora_checkpoint", dest="lora_checkpoint", metavar="PATH")
    p.add_argument(
        "--batch-size", "--batch_size", dest="batch_size", type=_positive, default=1,
        help="videos per forward pass (the official script accepts but ignores it)",
    )  # fmt: skip
    p.add_argument(
        "--num-frames", "--num_frames", dest="num_frames", type=_positive, default=NUM_FRAMES,
        help=f"frames sampled per video (default {NUM_FRAMES}, as the official script)",
    )  # fmt: skip
    p.add_argument("--dtype", choices=("bfloat16", "float32"), default="bfloat16")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available)")
    p.add_argument("--video-root", default=None)
    p.add_argument("--revision", default=None)
    return p


def _device(requested: str | None) -> str:
    """The torch device to judge on: the request, else the GPU when there is one."""
    if requested is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(requested)
    except RuntimeError:
        raise ValueError(f"--device {requested!r}: expected cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {requested}: no CUDA GPU is available here")
    return requested


def _resolve_video(path: str, roots: list[Path]) -> str:
    if Path(path).is_file():
        return path
    for root in roots:
        if (root / path).is_file():
            return str(root / path)
    return path  # let the judge raise VideoNotFoundError


def _text_error(text: str) -> str | None:
    """Why ``text`` cannot be judged before the model sees it (the tokenizer needs valid Unicode)."""
    if any("\ud800" <= c <= "\udfff" for c in text):
        return "text is not valid UTF-8 (undecodable bytes in the input CSV)"
    return None


class _Progress:
    """A rich progress bar on a terminal, else a log line every ``LOG_EVERY`` videos."""

    def __init__(self, total: int, tty: bool) -> None:
        self.total, self.done, self.unscored = total, 0, 0
        self.start = time.monotonic()
        self._bar: Any = None
        if tty:
            try:
                from rich.console import Console
                from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
            except ImportError:  # rich is optional: log lines then
                return
            self._bar = Progress(
                "judging", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                console=Console(stderr=True), transient=False,
            )  # fmt: skip
            self._task = self._bar.add_task("judge", total=total)
            self._bar.start()

    def warn(self, message: str) -> None:
        if self._bar is not None:
            self._bar.console.print(f"[yellow]warning[/] {message}", markup=True, highlight=False)
        else:
            log.warning("%s", message)

    def advance(self, scored: bool) -> None:
        self.done += 1
        self.unscored += not scored
        if self._bar is not None:
            self._bar.advance(self._task)
        elif self.done % LOG_EVERY == 0 or self.done == self.total:
            rate = self.done / max(time.monotonic() - self.start, 1e-9) * 60
            log.info(
                "judged %d/%d videos (%d without a score), %.1f videos/min",
                self.done, self.total, self.unscored, rate,
            )  # fmt: skip

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    csv_path, out_path = Path(args.input_csv), Path(args.output_csv)
    try:
        device = _device(args.device)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        df = csvio.read_frame(csv_path)
    except (OSError, ValueError) as exc:  # pandas' ParserError and EmptyDataError are ValueErrors
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).strip()
        print(f"error: cannot read {csv_path}: {reason}", file=sys.stderr)
        return 2
    needed = ["videopath"] + ([TEXT_COLUMN[args.task]] if TEXT_COLUMN[args.task] else [])
    missing = [c for c in needed if c not in df.columns]
    if missing:
        print(f"error: {csv_path} lacks column(s) {missing} needed by task {args.task}", file=sys.stderr)
        return 2
    if not out_path.parent.is_dir():
        print(f"error: --output-csv {out_path}: folder {out_path.parent} does not exist", file=sys.stderr)
        return 2
    try:
        judge = load_judge(
            args.checkpoint,
            device=device,
            dtype=args.dtype,
            revision=args.revision,
            lora_checkpoint=args.lora_checkpoint,
            num_frames=args.num_frames,
        )
    except JudgeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    log.info("judging %d videos (task %s) on %s, %s", len(df), args.task, device, args.dtype)
    roots = [Path(r) for r in (args.video_root,) if r] + [csv_path.parent, csv_path.parent.parent]
    text_col = TEXT_COLUMN[args.task]
    items, results = [], []
    for _, row in df.iterrows():
        text = "" if text_col is None else csvio.cell(row[text_col])
        items.append((_resolve_video(csvio.cell(row["videopath"]), roots), [JudgeQuery(args.task, text)]))
        results.append(_text_error(text))  # rows refused up front keep their reason here
    judged = [i for i, reason in enumerate(results) if reason is None]
    progress = _Progress(len(df), sys.stderr.isatty())
    rows: list[tuple[Any, str, str]] = [(None, "", "not_judged")] * len(df)
    interrupted = False
    try:
        for i, reason in enumerate(results):
            if reason is not None:
                rows[i] = (None, reason, "input_error")
                progress.warn(f"row {i}: {reason}")
                progress.advance(False)
        stream = judge.judge_stream([items[i] for i in judged], batch_size=args.batch_size)
        for i, ((path, _), result) in zip(judged, stream, strict=True):
            if isinstance(result, JudgeInputError):
                progress.warn(f"row {i} ({path}): {result}")
                rows[i] = (None, str(result), "input_error")
            else:
                answer = result.answers[0]
                rows[i] = (answer.score, answer.raw_text, answer.parse_status)
            progress.advance(rows[i][0] is not None)
    except KeyboardInterrupt:  # keep what was judged: the rest is written as not_judged
        interrupted = True
    finally:
        progress.close()
        judge.close()
    columns = [*df.columns, *(c for c in ADDED_COLUMNS if c not in df.columns)]
    out = df.copy()
    out["score"] = [None if s is None else float(s) for s, _, _ in rows]
    out["raw_text"] = [t for _, t, _ in rows]
    out["parse_status"] = [s for _, _, s in rows]
    try:
        table = zip(out.index, out[columns].to_numpy(), strict=True)
        csvio.write_csv(out_path, ["", *columns], ([k, *values] for k, values in table))
    except (OSError, csvio.CsvTextError) as exc:
        print(f"error: cannot write {out_path}: {exc}", file=sys.stderr)
        return 1
    if interrupted:
        print(f"interrupted: {progress.done} of {len(df)} rows done, written to {out_path}", file=sys.stderr)
        return INTERRUPTED
    return 1 if any(score is None for score, _, _ in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
