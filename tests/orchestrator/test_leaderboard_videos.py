"""`videophy-bench run --videos videophy2-test`: the test set's own videos fetched from a real HTTP server
on loopback (real benchmark MP4s; cut connections, 404, 5xx, a server without Range support, a stall,
a full disk) and judged by the real tiny judge, with 21 real rows of the test set as the test CSV."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest
from cli_process import LONG_S, Cli
from run_dirs import assert_exports_match_ledger, ledger_has, results, rows, wait_for
from video_server import VideoServer

from videophy_bench.common import csvio
from videophy_bench.common.storage import Storage
from videophy_bench.orchestrator.cli import main
from videophy_bench.orchestrator.download import Downloader, DownloadFailed, DownloadOptions

HERE = Path(__file__).resolve().parent
ROWS = HERE / "data" / "videophy2_test_rows.csv"  # 21 real rows of videophysics/videophy2_test
SHARED = Path(os.environ.get("VIDEOPHY_SHARED_DIR", HERE.parents[1].parent / "shared"))
EXAMPLES = sorted((SHARED / "data" / "videophy2" / "examples").glob("*.mp4"))
FAST = ["--refresh-s", "0.5", "--no-progress"]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fixture_rows() -> tuple[list[str], list[list[str]]]:
    header, body = csvio.read_rows(ROWS)
    return header, body


def url_path(url: str) -> str:
    return urllib.parse.urlsplit(url).path


def write_test_csv(path: Path, server: VideoServer, behaviours: dict[int, str] | None = None,
                   gates: dict[int, object] | None = None, bodies: dict[int, bytes] | None = None,
                   urls: dict[int, str] | None = None) -> tuple[Path, list[dict[str, str]]]:
    """The real rows with video_url rewritten to `server`, each serving a real benchmark MP4 (row k gets
    example k mod 20) with the behaviour given for its row. Returns the CSV and its rows as dicts."""
    header, body = fixture_rows()
    col = {h: k for k, h in enumerate(header)}
    out = []
    for k, fields in enumerate(body):
        served = url_path(fields[col["video_url"]])
        data = (bodies or {}).get(k, EXAMPLES[k % len(EXAMPLES)].read_bytes() if EXAMPLES else b"")
        fields = list(fields)
        if urls and k in urls:
            fields[col["video_url"]] = urls[k]
        else:
            fields[col["video_url"]] = server.serve(served, data, (behaviours or {}).get(k, "ok"),
                                                    (gates or {}).get(k))
        out.append({h: fields[i] for h, i in col.items()} | {"_sha256": sha(data), "_path": served})
    csvio.write_csv(path, header, ([r[h] for h in header] for r in out))
    return path, out


@pytest.fixture
def server():
    assert len(EXAMPLES) == 20, f"the shared benchmark videos are missing: {SHARED}"
    srv = VideoServer()
    yield srv
    srv.close()


def run_args(root: Path, name: str, test_csv: Path, address: str, *extra: str) -> list[str]:
    return ["run", "--videos", "videophy2-test", "--test-csv", str(test_csv), "--storage-root", str(root),
            "--out", str(root / "runs" / name), "--evaluators", address, *FAST, *extra]


# -- the downloader alone --------------------------------------------------------------------------
def fetch(storage: Storage, url: str, uri: str, **opts) -> object:
    async def go():
        async with Downloader(storage, DownloadOptions(backoff_initial_s=0.05, **opts)) as dl:
            return await dl.fetch(url, uri)

    return asyncio.run(go())


@pytest.mark.parametrize("behaviour", ["cut-once", "cut-no-range", "stall-once", "503-once"])
def test_downloader_retries_and_resumes_only_what_the_server_honours(server, tmp_path, behaviour):
    storage = Storage(tmp_path / "root")
    data = EXAMPLES[3].read_bytes()
    url = server.serve("/some_folder/a video, with 'quotes'; and+plus.mp4", data, behaviour)
    got = fetch(storage, url, "videos/wan/r1.mp4", timeout_s=1.0)
    final = storage.resolve("videos/wan/r1.mp4")
    assert final.read_bytes() == data and got.sha256 == sha(data) and got.size == len(data)
    assert sorted(p.name for p in final.parent.iterdir()) == ["r1.mp4"]  # no part, no meta left
    log = server.requests(url_path(url))
    assert len(log) == 2 and got.attempts == 2 and log[0].range is None
    if behaviour == "503-once":
        assert [r.status for r in log] == [503, 200] and got.resumed_from == 0
        return
    # The first response sent half the body: the second asks for the rest.
    assert log[1].range is not None and log[1].range.startswith("bytes=")
    asked = int(log[1].range.split("=")[1].rstrip("-"))
    assert 0 < asked < len(data)
    if behaviour == "cut-no-range":  # a 200 to the Range request: the part is started over
        assert log[1].status == 200 and got.resumed_from == 0
    else:
        assert log[1].status == 206 and got.resumed_from == asked


def test_downloader_never_retries_404_or_a_video_over_the_cap(server, tmp_path):
    storage = Storage(tmp_path / "root")
    missing = server.serve("/f/missing.mp4", b"", "404")
    with pytest.raises(DownloadFailed, match="HTTP 404 Not Found"):
        fetch(storage, missing, "videos/a/r1.mp4")
    assert len(server.requests("/f/missing.mp4")) == 1
    big = server.serve("/f/big.mp4", os.urandom(300_000))
    with pytest.raises(DownloadFailed, match="over the size cap of 200000 bytes"):
        fetch(storage, big, "videos/a/r2.mp4", max_bytes=200_000)
    assert len(server.requests("/f/big.mp4")) == 1
    assert not list((tmp_path / "root").rglob("*.mp4*"))  # nothing half written stays


def test_a_stale_part_of_a_changed_file_is_not_continued(server, tmp_path):
    """If-Range: a part begun from an earlier version of the file is replaced, not appended to."""
    storage = Storage(tmp_path / "root")
    old, new = EXAMPLES[1].read_bytes(), EXAMPLES[2].read_bytes()
    url = server.serve("/f/v.mp4", old, "cut-once")
    with pytest.raises(DownloadFailed, match="after 1 attempts"):
        fetch(storage, url, "videos/a/r.mp4", attempts=1)
    part = storage.resolve("videos/a/r.mp4.part")
    assert 0 < part.stat().st_size < len(old)
    server.serve("/f/v.mp4", new)  # the file changed on the server (new ETag)
    got = fetch(storage, url, "videos/a/r.mp4")
    last = server.requests("/f/v.mp4")[-1]
    assert last.range and last.status == 200 and got.sha256 == sha(new)


# -- whole runs ------------------------------------------------------------------------------------
def test_leaderboard_videos_are_fetched_judged_as_they_land_and_failures_recorded(server, judge, tmp_path):
    root, address = judge
    run_dir = root / "runs" / "lb"

    def judged_three() -> bool:
        return ledger_has(run_dir, lambda r: r["state"] == "judged", at_least=3)

    behaviours = {0: "cut-once", 1: "404", 2: "cut-no-range", 3: "503-once", 4: "gate"}
    bodies = {6: b"<html>Access Denied</html>\n" * 50, 7: os.urandom(2 * 2**20)}
    urls = {8: "file:///etc/passwd"}
    test_csv, data = write_test_csv(tmp_path / "test.csv", server, behaviours, {4: judged_three}, bodies,
                                    urls)
    escape = "/cosmos_videophy2_test_challenging/..%2F..%2F..%2Fescape.mp4"  # a URL naming no file here
    header, body = csvio.read_rows(test_csv)
    body[9][header.index("video_url")] = server.serve(escape, EXAMPLES[9].read_bytes())
    data[9]["_path"] = escape
    csvio.write_csv(test_csv, header, body)
    args = run_args(root, "lb", test_csv, address, "--download-concurrency", "3", "--max-video-mb", "1.5")
    assert main(args) == 0

    led = rows(run_dir)
    by_url = {r["video_url"]: r for r in results(run_dir)}
    assert len(led) == 21 and len(by_url) == 21
    failed = {k: by_url[body[k][header.index("video_url")]] for k in (1, 6, 7, 8)}
    assert failed[1]["error"].startswith("download: HTTP 404 Not Found")
    assert failed[6]["error"].startswith("download: not a decodable video")
    assert "over the size cap" in failed[7]["error"]
    assert failed[8]["error"] == "input: video_url 'file:///etc/passwd' is not an http(s) URL"
    assert all(r["state"] == "failed" and r["video_path"] == "" for r in failed.values())
    judged = [r for r in by_url.values() if r["state"] == "judged"]
    assert len(judged) == 17
    # The gated video was served only once three others had been judged: judging overlaps downloads.
    assert by_url[body[4][header.index("video_url")]]["state"] == "judged"
    for k, row in enumerate(data):
        res = by_url[body[k][header.index("video_url")]]
        assert res["arm"] == row["model_name"] and res["caption"] == row["caption"]
        upsampled = row["model_name"] in ("wan", "cogvideo") and k != 8  # row 8's URL names no folder
        assert res["caption_source"] == ("upsampled" if upsampled else "unknown")  # *_hard_upsampled/
        if res["state"] == "judged":
            path = run_dir / res["video_path"]
            assert path.parent == run_dir / "videos" / row["model_name"]  # nothing named by the URL
            assert res["sha256"] == row["_sha256"] == sha(path.read_bytes())
            assert res["sa_parse"] and res["pc_parse"]
    assert not list(root.rglob("escape.mp4")) and not list(run_dir.rglob("*.part*"))
    assert {p.parent.name for p in (run_dir / "videos").rglob("*") if p.is_file()} <= {
        r["model_name"] for r in data}
    assert [r.status for r in server.requests(data[0]["_path"])] == [200, 206]
    assert [r.status for r in server.requests(data[2]["_path"])] == [200, 200]
    assert len(server.requests(data[1]["_path"])) == 1  # a 404 is not retried
    assert_exports_match_ledger(run_dir)
    man = json.loads((run_dir / "manifest.json").read_text())
    src = man["video_sources"]
    assert set(src) == {r["model_name"] for r in data}
    assert src["wan"]["caption_source"] == "upsampled" and src["hunyuan"]["caption_source"] == "unknown"
    assert src["cogvideo"]["url_folders"] == {"cogvideoX5b_hard_upsampled": 3, "etc": 1}  # row 8: file:///etc
    assert src["wan"]["kind"] == "videophy2-test" and src["wan"]["csv_sha256"]

    # Rerun: nothing fetched or judged again but the failures (a 404 is asked once more).
    before = {r["request_id"]: (r["judge_attempts"], r["sha256"])
              for r in rows(run_dir) if r["state"] == "judged"}
    counts = {row["_path"]: len(server.requests(row["_path"])) for row in data}
    assert main(args) == 0
    after = {r["request_id"]: r for r in rows(run_dir)}
    assert {rid: (after[rid]["judge_attempts"], after[rid]["sha256"]) for rid in before} == before
    again = {row["_path"]: len(server.requests(row["_path"])) - counts[row["_path"]] for row in data}
    refetched = {p for p, n in again.items() if n}
    assert refetched == {data[k]["_path"] for k in (1, 6, 7)}  # the file:// row asks nothing
    assert assert_exports_match_ledger(run_dir)["n_failed"] == 4


def test_bad_test_set_options_are_one_line_and_create_nothing(tmp_path, capsys):
    rows_csv = tmp_path / "t.csv"
    shutil.copyfile(ROWS, rows_csv)
    out = tmp_path / "run"
    cases = [
        (["--videos", "videophy2-test", "--test-csv", str(rows_csv), "--arms", "wan,veo"],
         "--arms veo: not a model of the test set"),
        (["--videos", "videophy2-test", "--test-csv", str(tmp_path / "nope.csv")], "no such file"),
        (["--videos", "videophy2-test", "--test-csv", str(rows_csv), "--arm", "x"], "--arm does not apply"),
        (["--test-csv", str(rows_csv)], "apply only to --videos videophy2-test"),
        (["--videos", "videophy2-test", "--test-csv", str(rows_csv), "--download-concurrency", "0"],
         "--download-concurrency"),
        (["--videos", "videophy2-test", "--test-csv", str(HERE / "data" / "README.md")],
         "is not the VideoPhy-2 test set"),
    ]
    for extra, message in cases:
        code = main(["run", *extra, "--out", str(out), "--evaluators", "127.0.0.1:1"])
        err = capsys.readouterr().err
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, (extra, err)
        assert not out.exists()


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killed_mid_download_resumes_the_parts_and_refetches_nothing_finished(server, tmp_path, sig):
    """A real CLI with --local (the tiny judge as its child) is killed (or drained by SIGTERM) with two
    downloads half done; the same command then continues their parts and fetches nothing that had
    landed."""
    run_dir = tmp_path / "run"
    header, body = fixture_rows()
    model = header.index("model_name")
    picked = [k for k, f in enumerate(body) if f[model] in ("wan", "cosmos")]  # 3 + 5 rows
    held = picked[:2]
    test_csv, data = write_test_csv(tmp_path / "test.csv", server, dict.fromkeys(held, "hold"))
    args = ["run", "--videos", "videophy2-test", "--test-csv", str(test_csv), "--arms", "wan,cosmos",
            "--local", "--judge-model", "tiny", "--out", str(run_dir), "--download-concurrency", "3", *FAST]
    run = Cli(args, tmp_path / "first.log")
    parts = run_dir / "videos"

    def halves_on_disk() -> bool:
        return len([p for p in parts.rglob("*.mp4.part") if p.stat().st_size > 0]) == 2

    wait_for(lambda: ledger_has(run_dir, lambda r: r["state"] == "judged", at_least=6) and halves_on_disk(),
             LONG_S, "six videos judged with the two held halves on disk")
    os.kill(run.proc.pid, sig)
    assert run.wait() == (-sig if sig == signal.SIGKILL else 128 + sig), run.stderr()[-3000:]
    if sig == signal.SIGTERM:  # drained: one line, the exports written, the parts kept
        assert "interrupted by SIGTERM" in run.last_line() and "Traceback" not in run.stderr()
        assert_exports_match_ledger(run_dir)
    sizes = {p.name: p.stat().st_size for p in parts.rglob("*.mp4.part")}
    finished = {r["request_id"]: (r["sha256"], r["judge_attempts"])
                for r in rows(run_dir) if r["state"] == "judged"}
    counts = {row["_path"]: len(server.requests(row["_path"])) for row in data}
    for k in held:
        server.release(data[k]["_path"])  # the first session's held responses end (to a dead socket)

    second = Cli(args, tmp_path / "second.log")
    assert second.wait() == 0, second.stderr()[-3000:]
    led = {r["request_id"]: r for r in rows(run_dir)}
    assert len(led) == 8 and {r["state"] for r in led.values()} == {"judged"}
    assert {rid: (led[rid]["sha256"], led[rid]["judge_attempts"]) for rid in finished} == finished
    for k in held:
        log = server.requests(data[k]["_path"])
        assert len(log) == counts[data[k]["_path"]] + 1  # one more request: the rest of the part
        assert log[-1].status == 206 and int(log[-1].range.split("=")[1].rstrip("-")) in sizes.values()
    landed = [data[k] for k in picked if k not in held]  # fetched by the first session, or never begun
    refetched = [row["_path"] for row in landed if counts[row["_path"]] and
                 len(server.requests(row["_path"])) != counts[row["_path"]]]
    assert refetched == []
    assert {r["video_url"]: r["sha256"] for r in results(run_dir)} == {
        data[k]["video_url"]: data[k]["_sha256"] for k in picked}
    assert not list(parts.rglob("*.part*"))
    assert_exports_match_ledger(run_dir)


def test_a_full_disk_fails_its_downloads_with_the_reason_and_the_run_ends_cleanly(server, judge, tmp_path):
    """The arm's video folder is a 64 KiB tmpfs (a mount namespace of its own): the first download
    hits ENOSPC, the rest are not begun, each is a failed item with the reason; exit 0, exports written."""
    root, address = judge
    run_dir = root / "runs" / "full"
    test_csv, _ = write_test_csv(tmp_path / "test.csv", server)
    args = run_args(root, "full", test_csv, address, "--arms", "wan", "--download-concurrency", "1")
    folder = run_dir / "videos" / "wan"
    folder.mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    script = 'mount -t tmpfs -o size=64k tmpfs "$1" && shift && exec "$@"'
    proc = subprocess.run(
        ["unshare", "--map-root-user", "--mount", "sh", "-c", script, "sh", str(folder),
         sys.executable, "-m", "videophy_bench.orchestrator.cli", *args],
        capture_output=True, text=True, env=env, timeout=LONG_S,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    led = rows(run_dir)
    assert len(led) == 3 and {r["state"] for r in led} == {"failed"}
    errors = sorted(r["error"] for r in led)
    assert errors[0].startswith("download: no space left on the storage root's disk") and "rerun" in errors[0]
    assert all(e.startswith("download: not fetched: no space left") for e in errors[1:])
    assert "Traceback" not in proc.stderr
    assert assert_exports_match_ledger(run_dir)["n_failed"] == 3
