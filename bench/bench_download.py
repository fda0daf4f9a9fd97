"""Download throughput of `run --videos videophy2-test` (services/orchestrator/download.py) against a
loopback HTTP server, on this machine: the same Downloader the run uses (httpx2, bounded concurrency,
part files, fsync, sha256, atomic rename), alone and followed by the full decode the run does before a
video is judged.

The server (stdlib ThreadingHTTPServer, HTTP/1.1 keep-alive) serves N copies of the 20 real benchmark
videos in ../shared/data/videophy2/examples (50 KB - 1.1 MB each; the leaderboard's videos are of
that order). Loopback has no network in the way, so the numbers are the client's own ceiling; a real
run is bounded by the server and the link (S3 in us-east-2 for the leaderboard videos).

  OMP_NUM_THREADS=1 python bench/bench_download.py --videos 400 --concurrency 8 --out /tmp/dl.json
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import http.server
import json
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

from videophy_bench.common.storage import Storage
from videophy_bench.orchestrator import artifacts
from videophy_bench.orchestrator.download import Downloader, DownloadOptions

SHARED = Path(os.environ.get("VIDEOPHY_SHARED_DIR", Path(__file__).resolve().parents[1].parent / "shared"))


class _Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass


async def _fetch_all(storage: Storage, urls: list[str], concurrency: int, decode: bool) -> float:
    threads = max(1, min(4, (os.cpu_count() or 2) // 2))  # as the run's verify threads

    async def one(dl: Downloader, k: int, url: str) -> None:
        got = await dl.fetch(url, f"videos/bench/r{k}.mp4")
        if decode:
            await asyncio.get_running_loop().run_in_executor(
                pool, functools.partial(artifacts.verify, storage, got.uri, got.sha256, decode=True))

    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(threads)
    t0 = time.perf_counter()
    async with Downloader(storage, DownloadOptions(concurrency=concurrency)) as dl:
        await asyncio.gather(*(one(dl, k, u) for k, u in enumerate(urls)))
    pool.shutdown()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    ap.add_argument("--videos", type=int, default=400)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    examples = sorted((SHARED / "data" / "videophy2" / "examples").glob("*.mp4"))
    if not examples:
        raise SystemExit(f"no benchmark videos under {SHARED}/data/videophy2/examples")
    work = Path(tempfile.mkdtemp(prefix="bench-download-"))
    served = work / "served"
    served.mkdir()
    total = 0
    for k in range(args.videos):
        src = examples[k % len(examples)]
        shutil.copyfile(src, served / f"v{k}.mp4")
        total += src.stat().st_size
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Handler, directory=str(served)))
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    urls = [f"http://127.0.0.1:{httpd.server_address[1]}/v{k}.mp4" for k in range(args.videos)]
    result: dict[str, object] = {"videos": args.videos, "bytes": total, "concurrency": args.concurrency,
                                 "cpus": os.cpu_count()}
    try:
        for name, decode in (("download", False), ("download_and_decode", True)):
            root = work / name
            seconds = asyncio.run(_fetch_all(Storage(root), urls, args.concurrency, decode))
            result[name] = {"seconds": round(seconds, 3), "MB_per_s": round(total / seconds / 1e6, 1),
                            "videos_per_s": round(args.videos / seconds, 1)}
            print(f"{name}: {args.videos} videos, {total / 1e6:.1f} MB in {seconds:.2f} s: "
                  f"{total / seconds / 1e6:.1f} MB/s, {args.videos / seconds:.1f} videos/s")
    finally:
        httpd.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
