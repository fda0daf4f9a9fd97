"""`videophy-bench push` up to the wire: a loopback Hub (tests/deploy/loopback_hub.py) takes the
create_repo and the commit that huggingface_hub sends, and the test reads exactly what arrived."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import yaml
from scored_run import cli, rescore, tiny_run

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "deploy"))
from loopback_hub import LoopbackHub

TOKEN = "hf_loopback_secret_token"
RESULTS = {"results.csv", "results.json", "summary.json", "manifest.json", "prompts.csv"}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("push") / "tiny-run"
    tiny_run(run_dir, "--auth-token", "service-secret")  # a secret in the command line, masked on the card
    rescore(run_dir)
    return run_dir


@pytest.fixture
def hub():
    hub = LoopbackHub(token=TOKEN)
    yield hub
    hub.close()


def hub_env(hub: LoopbackHub, tmp_path: Path, token: str | None = TOKEN) -> dict[str, str]:
    return {"HF_ENDPOINT": hub.url, "HF_TOKEN": token or "", "HF_HOME": str(tmp_path / "hf-home"),
            "HF_HUB_DISABLE_TELEMETRY": "1"}


def local_files(run_dir: Path) -> dict[str, bytes]:
    files = {name: (run_dir / name).read_bytes() for name in RESULTS}
    files |= {f"official/{p.name}": p.read_bytes() for p in (run_dir / "official").glob("*.csv")}
    return files


def test_push_sends_the_results_and_a_dataset_card(run_dir, hub, tmp_path):
    done = cli(["push", str(run_dir), "--repo", "me/videophy2-tiny", "--license", "mit"],
               hub_env(hub, tmp_path))
    assert done.returncode == 0, done.stderr
    [push] = hub.pushes
    url = f"{hub.url}/datasets/me/videophy2-tiny/commit/{push.sha}"
    assert done.stdout.strip() == f"pushed {run_dir} to {url}"
    assert hub.created == [{"name": "videophy2-tiny", "organization": "me", "type": "dataset"}]
    assert (push.repo, push.branch, push.summary) == ("me/videophy2-tiny", "main",
                                                      "videophy-bench results of tiny-run")
    card = push.files.pop("README.md").decode()
    assert push.files == local_files(run_dir)  # exactly the results, byte for byte; no videos
    assert set(hub.authorizations) == {f"Bearer {TOKEN}"}
    assert TOKEN not in done.stdout + done.stderr

    _, front, body = card.split("---\n", 2)
    meta = yaml.safe_load(front)
    assert meta["license"] == "mit" and {"videophy2", "text-to-video", "evaluation"} <= set(meta["tags"])
    assert meta["configs"] == [{"config_name": "default",
                                "data_files": [{"split": "test", "path": "results.csv"}]}]
    doc = json.loads((run_dir / "results.json").read_text())
    rows = {r["subset"]: r for r in doc["conditions"][0]["subsets"]}
    a = rows["all"]
    assert (f"| base | 0 | all | 4 / 4 | 50.0% [{100 * a['joint_lo']:.1f}, {100 * a['joint_hi']:.1f}] | "
            f"3.00 [{a['mean_sa_boot_lo']:.2f}, {a['mean_sa_boot_hi']:.2f}] | "
            f"3.25 [{a['mean_pc_boot_lo']:.2f}, {a['mean_pc_boot_hi']:.2f}] |") in body
    for subset in ("hard", "easy"):
        assert f"| base | 0 | {subset} | {rows[subset]['n']} / {rows[subset]['n_items']} |" in body
    assert "Headline: joint 50.0%" in body
    assert f"Configuration hash `{doc['run']['config_hash']}`" in body
    assert json.dumps(doc["run"]["config"], indent=2, sort_keys=True) in body
    assert "--auth-token REDACTED" in body and "service-secret" not in card  # the command, its secret masked
    assert b"service-secret" not in push.files["manifest.json"]
    assert f"videophy-bench {doc['tool']['version']}" in body
    assert "arXiv:2503.06800" in body and "@article{bansal2025videophy2" in body


def test_push_with_videos_a_report_a_branch_and_private(run_dir, hub, tmp_path):
    report = tmp_path / "my-report"
    (report / "figures").mkdir(parents=True)
    (report / "report.html").write_text("<html>report</html>")
    (report / "figures" / "joint.png").write_bytes(b"\x89PNG fake")
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    env = hub_env(hub, tmp_path, token=None)
    for branch in ("v1", "v1"):  # the second push: repo and branch exist, same commit path
        done = cli(["push", str(run_dir), "--repo", "me/vp", "--include-videos", "--private", "--branch",
                    branch, "--report", str(report), "--token-file", str(token_file)], env)
        assert done.returncode == 0, done.stderr
    assert hub.created == [{"name": "vp", "organization": "me", "type": "dataset", "visibility": "private"}]
    first, second = hub.pushes
    assert first.branch == second.branch == "v1"
    assert first.files.keys() == second.files.keys()  # the exports rewritten from the ledger each time:
    stamp = {"generated_at": None}
    assert {**json.loads(first.files["results.json"]), **stamp} == {
        **json.loads(second.files["results.json"]), **stamp}  # the same numbers, a new time stamp
    videos = {f"videos/{p.relative_to(run_dir / 'videos').as_posix()}": p.read_bytes()
              for p in (run_dir / "videos").rglob("*") if p.is_file()}
    assert len([v for v in videos if v.endswith(".mp4")]) == 4
    expected = {**local_files(run_dir), **videos, "report/report.html": b"<html>report</html>",
                "report/figures/joint.png": b"\x89PNG fake"}
    assert {k: v for k, v in second.files.items() if k != "README.md"} == expected  # the files as now
    assert "POST /api/datasets/me/vp/branch/v1" in hub.requests


def test_a_refused_token_is_one_line(run_dir, hub, tmp_path):
    done = cli(["push", str(run_dir), "--repo", "me/vp"], hub_env(hub, tmp_path, token="hf_wrong_token"))
    assert done.returncode == 1
    assert done.stderr.strip() == (f"videophy-bench push: {hub.url} refused the token (401): check "
                                   "HF_TOKEN / --token-file and that it may write to the repo")
    assert "hf_wrong_token" not in done.stderr and not hub.pushes


def test_an_unreachable_hub_is_one_line(run_dir, tmp_path, unused_port):
    url = f"http://127.0.0.1:{unused_port()}"  # nothing listens there
    done = cli(["push", str(run_dir), "--repo", "me/vp"],
               {"HF_ENDPOINT": url, "HF_TOKEN": TOKEN, "HF_HOME": str(tmp_path)})
    assert done.returncode == 1
    [only] = done.stderr.strip().splitlines()
    assert only.startswith(f"videophy-bench push: cannot reach {url}: ")
    assert TOKEN not in done.stderr


@pytest.mark.parametrize("args, line", [
    (["--repo", "me/vp"], "no Hub token: set HF_TOKEN, give --token-file PATH, or run `hf auth login`"),
    (["--repo", "not a/valid id"], "--repo not a/valid id: "),
    (["--repo", "me/vp", "--report", "/nonexistent-report"],
     "--report /nonexistent-report is not a directory"),
])
def test_bad_input_is_one_line_before_anything_is_sent(run_dir, hub, tmp_path, args, line):
    env = hub_env(hub, tmp_path, token=None if "no Hub token" in line else TOKEN)
    done = cli(["push", str(run_dir), *args], env)
    assert done.returncode == 2
    [only] = done.stderr.strip().splitlines()
    assert only.startswith("videophy-bench push: ") and line in only
    assert hub.requests == []


def test_push_of_a_directory_without_results_is_one_line(hub, tmp_path):
    done = cli(["push", str(tmp_path), "--repo", "me/vp"], hub_env(hub, tmp_path))
    assert done.returncode == 2
    assert done.stderr.startswith(f"videophy-bench push: {tmp_path}: no results.json")
    assert hub.requests == []


def test_a_manifest_written_before_redaction_goes_out_redacted(run_dir, hub, tmp_path):
    old = tmp_path / "old-run"
    shutil.copytree(run_dir, old, ignore=shutil.ignore_patterns("videos", "ledger.sqlite*"))
    manifest = json.loads((old / "manifest.json").read_text())
    manifest["sessions"][0]["argv"] += ["--api-key=sk-old", "--auth-token", "old-secret"]  # as once kept
    (old / "manifest.json").write_text(json.dumps(manifest))
    done = cli(["push", str(old), "--repo", "me/old"], hub_env(hub, tmp_path))
    assert done.returncode == 0, done.stderr
    [push] = hub.pushes
    pushed = json.loads(push.files["manifest.json"])
    assert pushed["sessions"][0]["argv"][-3:] == ["--api-key=REDACTED", "--auth-token", "REDACTED"]
    assert {k: v for k, v in pushed.items() if k != "sessions"} == {
        k: v for k, v in manifest.items() if k != "sessions"}
    everything = b"".join(push.files.values())
    assert b"old-secret" not in everything and b"sk-old" not in everything
