"""The whole job on N GPUs of one host: `videophy-bench run --local`, one generator per GPU (issue 15).

  # on a host with 8 GPUs, full-size TI2V-5B with random weights (written once by bench_ready.py):
  python bench/bench_multi_gpu.py --gpus 1,2,4,8 --videos-per-gpu 3 --weights-dir /tmp/wan5b-random \
      --out bench/results/h200x8-DATE/multi_gpu.json
  # CPU dry run of this script (tiny models, N generator processes on the CPU, tiny judge):
  python bench/bench_multi_gpu.py --cpu --gpus 1,2 --videos-per-gpu 2 --judge tiny --out /tmp/mg.json

For each N, one real CLI process: `run --local --model wan2.2-ti2v-5b` with CUDA_VISIBLE_DEVICES set
to the first N GPUs, so `LocalServices` starts one generator child per GPU (each sees only its own),
with VIDEOPHY_MODEL_PATH pointing the generators at the random-weights directory (nothing is
downloaded; speed does not depend on weight values). N x `--videos-per-gpu` prompts, all distinct.
`--judge none` (default) generates only; `--judge DIR` starts `--local-evaluators` evaluators of the
judge in DIR (they share GPUs 0.. with generators); `--judge tiny` is for the CPU dry run.

Measured per N from the run's ledger (wall clock, seconds since the epoch) and the CLI's own timing:
- `time_to_first_video_s`: CLI start -> first video verified and recorded (children's load, warm-up,
  Prepare of every prompt, one video);
- `job_videos_per_hour`: videos / (CLI start -> last video recorded): the whole job;
- `steady_videos_per_hour`: the sum over generators of (videos - 1) / (its last - its first
  completion): the rate once every GPU works, without start-up;
- `efficiency_vs_n_x_one` (steady and whole job): the rate at N / (N x the rate at N = 1);
- `gen_seconds`: per-video Generate call time (median, max) as the ledger recorded it;
- judge: per video generated -> judged (median, max) and the judging tail after the last video.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchlib import ROOT, use_repo_imports

use_repo_imports()

from bench_orchestrator import write_prompts  # noqa: E402


def ledger_rows(run_dir: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(f"file:{run_dir / 'ledger.sqlite'}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(
            "SELECT state, gen_replica, gen_seconds, generated_at, judged_at FROM items")]
    finally:
        conn.close()


def dist(values: list[float]) -> dict[str, float] | None:
    return {"median": round(statistics.median(values), 2), "max": round(max(values), 2)} if values else None


def measure(rows: list[dict[str, Any]], t_start: float, wall_s: float) -> dict[str, Any]:
    done = [r for r in rows if r["generated_at"] is not None]
    times = sorted(r["generated_at"] for r in done)
    by_replica: dict[str, list[float]] = {}
    for r in done:
        by_replica.setdefault(r["gen_replica"], []).append(r["generated_at"])
    steady = sum((len(ts) - 1) / (max(ts) - min(ts)) for ts in by_replica.values() if len(ts) > 1) * 3600
    judged = [r for r in done if r["judged_at"] is not None]
    out: dict[str, Any] = {
        "cli_wall_s": round(wall_s, 1),
        "states": {s: sum(r["state"] == s for r in rows) for s in sorted({r["state"] for r in rows})},
        "videos": len(done),
        "generators_with_work": len(by_replica),
        "videos_per_generator": sorted(len(ts) for ts in by_replica.values()),
        "time_to_first_video_s": round(times[0] - t_start, 1) if times else None,
        "job_videos_per_hour": round(len(done) / (times[-1] - t_start) * 3600, 2) if times else None,
        "steady_videos_per_hour": round(steady, 2) if steady else None,
        "gen_seconds": dist([r["gen_seconds"] for r in done if r["gen_seconds"] is not None]),
    }
    if judged:
        out["judge"] = {
            "judged": len(judged),
            "generated_to_judged_s": dist([r["judged_at"] - r["generated_at"] for r in judged]),
            "tail_after_last_video_s": round(max(r["judged_at"] for r in judged) - times[-1], 1),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(allow_abbrev=False, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gpus", default="1,2,4,8", help="comma list of GPU counts N")
    p.add_argument("--videos-per-gpu", type=int, default=3)
    p.add_argument("--weights-dir", type=Path, help="full-size random TI2V-5B (bench_ready.py --weights-dir)")
    p.add_argument("--judge", default="none", help="none, tiny (CPU dry run) or a local judge directory")
    p.add_argument("--local-evaluators", type=int, default=1)
    p.add_argument("--cpu", action="store_true", help="dry run: tiny models, N generators on the CPU")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/bench-multi-gpu"))
    p.add_argument("--timeout-s", type=float, default=3600.0, help="per N")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("extra", nargs="*", help="more `run` flags after --, e.g. -- --steps 10")
    args = p.parse_args(argv)
    counts = [int(x) for x in args.gpus.split(",")]
    if not args.cpu and (args.weights_dir is None or not (args.weights_dir / "model_index.json").is_file()):
        p.error("--weights-dir must hold a diffusers pipeline (bench/bench_ready.py --weights-dir DIR)")
    out: dict[str, Any] = {
        "command": " ".join(["python bench/bench_multi_gpu.py", *(sys.argv[1:] if argv is None else argv)]),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "targets": {"scaling_efficiency": 0.95},
        "by_gpus": {},
    }
    if not args.cpu:
        smi = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=False).stdout
        out["machine"]["gpus"] = smi.splitlines()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for n in counts:
        work = args.workdir / f"n{n}"
        prompts = args.workdir / f"prompts-n{n}.csv"
        work.mkdir(parents=True, exist_ok=True)
        write_prompts(prompts, n * args.videos_per_gpu, f"gpus{n}")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
        cmd = [sys.executable, "-m", "videophy_bench.orchestrator.cli", "run", "--local",
               "--prompts", str(prompts),
               "--out", str(work / "run"), "--storage-root", str(work), "--no-progress"]
        if args.cpu:
            env.pop("CUDA_VISIBLE_DEVICES", None)
            cmd += ["--model", "tiny", "--local-generators", str(n)]
        else:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(str(k) for k in range(n))
            env["VIDEOPHY_MODEL_PATH"] = str(args.weights_dir)  # read by the generator children only
            cmd += ["--model", "wan2.2-ti2v-5b"]
        if args.judge == "none":
            cmd += ["--no-judge"]
        else:
            cmd += ["--judge-model", args.judge, "--local-evaluators", str(args.local_evaluators)]
        cmd += args.extra
        log = work / "cli.log"
        t_start, t0 = time.time(), time.monotonic()
        with open(log, "wb") as f:
            rc = subprocess.run(cmd, env=env, stdout=f, stderr=subprocess.STDOUT, timeout=args.timeout_s,
                                check=False).returncode
        res = {"rc": rc, "cli": cmd[2:], "log": str(log),
               **measure(ledger_rows(work / "run"), t_start, time.monotonic() - t0)}
        out["by_gpus"][str(n)] = res
        print(f"N={n}: {json.dumps(res)}", flush=True)
        base = out["by_gpus"].get("1")
        for k, e in out["by_gpus"].items():
            for key in ("steady_videos_per_hour", "job_videos_per_hour"):
                if base and base.get(key) and e.get(key):
                    e[f"efficiency_vs_n_x_one_{key.split('_')[0]}"] = round(e[key] / (int(k) * base[key]), 4)
        args.out.write_text(json.dumps(out, indent=1) + "\n")  # after every N: a cut-off session keeps it
    return 0


if __name__ == "__main__":
    sys.exit(main())
