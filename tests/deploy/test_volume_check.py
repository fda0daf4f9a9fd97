"""The shared-volume preflight (services/orchestrator/volume_check.py, `videophy-bench cluster check`).

Tests run as root, which no permission stops: the checks that must bite run in a forked child that drops
to an unprivileged UID (65534) first, as a pod's runAsUser does, against directories owned by another
UID the way an RWX volume ignoring fsGroup is.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from test_cluster import OVERLAY, FakeKubectl

from videophy_bench.orchestrator import cluster
from videophy_bench.orchestrator.volume_check import REPORT_PREFIX, VolumeReport, check_volume, main

NOBODY = 65534
POD_UID = 10001

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="dropping to another UID needs root")


@pytest.fixture()
def mounts() -> Iterator[Path]:
    # Under /tmp itself: pytest's tmp_path is 0700 root, which an unprivileged child could not traverse.
    root = Path(tempfile.mkdtemp(prefix="videophy-volumes-", dir="/tmp"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root)


def check_as(uid: int, gid: int, path: Path) -> VolumeReport:
    """check_volume in a forked child running as uid:gid (no supplementary groups)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(read)
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            rep = check_volume(path, size_mib=1)
            os.write(write, json.dumps(rep.__dict__).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as f:
        data = f.read()
    os.waitpid(pid, 0)
    return VolumeReport(**json.loads(data))


def test_a_writable_volume_passes_with_its_throughput(mounts: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--size-mib", "2", str(mounts)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("ok") and "MiB/s" in out
    assert list(mounts.iterdir()) == [], "the scratch file is removed"


@needs_root
def test_eacces_names_the_uid_and_the_mounts_owner(mounts: Path) -> None:
    volume = mounts / "videos"
    volume.mkdir(mode=0o755)
    os.chown(volume, POD_UID, POD_UID)  # as a CSI driver that ignores fsGroup leaves it
    rep = check_as(NOBODY, NOBODY, volume)
    assert not rep.ok
    assert "EACCES" in rep.message and f"uid {NOBODY} gid {NOBODY}" in rep.message
    assert f"owned by {POD_UID}:{POD_UID} mode 0755" in rep.message
    assert "\n" not in rep.message


@needs_root
def test_a_group_writable_setgid_directory_fixes_it(mounts: Path) -> None:
    # What an EFS access point or a setgid group directory gives the pods' GID (docs/deploy.md).
    volume = mounts / "videos"
    volume.mkdir()
    os.chown(volume, 0, NOBODY)
    volume.chmod(0o2775)
    rep = check_as(NOBODY, NOBODY, volume)
    assert rep.ok, rep.message
    assert rep.write_mb_s > 0


def test_a_missing_mount_fails_in_one_line(mounts: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(mounts), str(mounts / "absent")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"FAIL  {mounts / 'absent'}: not a directory (is the volume mounted?)"]


# --- cluster check -------------------------------------------------------------------------------------


@pytest.fixture()
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeKubectl:
    return FakeKubectl(tmp_path, monkeypatch)


def _preflight(fake: FakeKubectl) -> dict:
    for c in fake.calls():
        if "create" in c["argv"]:
            return next(d for d in yaml.safe_load_all(c["stdin"]) if d)
    raise AssertionError("no preflight Job was created")


@pytest.mark.parametrize(("condition", "rc"), [("Complete", 0), ("Failed", 1)])
def test_cluster_check_runs_the_preflight_as_the_pods_run(fake: FakeKubectl, condition: str, rc: int,
                                                          tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    fake.job.write_text(json.dumps({"status": {"conditions": [{"type": condition, "status": "True"}]}}))
    logs = tmp_path / "logs.txt"  # what the preflight prints last (the dev overlay's tiny models: no sizing)
    logs.write_text(REPORT_PREFIX + json.dumps({"volumes": [], "models": {}}) + "\n")
    monkeypatch.setenv("FAKE_KUBECTL_LOGS", str(logs))
    assert cluster.cluster_main(["check", "--overlay", OVERLAY]) == rc
    job = _preflight(fake)
    spec = job["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert container["command"][:3] == ["python", "-m", "videophy_bench.orchestrator.volume_check"]
    assert container["command"][-2:] == ["/data", "/cache/hf"], "both volumes, where the pods mount them"
    assert container["command"][-4:-2] == ["--hf-home", "/cache/hf"], "the cached models, to size probes"
    assert spec["securityContext"]["runAsUser"] == POD_UID and container["securityContext"]["runAsNonRoot"]
    assert job["spec"]["backoffLimit"] == 0
    # The run's API token (for the end-of-run release) is not the preflight's.
    assert "serviceAccountName" not in spec and not [v for v in spec["volumes"] if "projected" in v]
    assert "/var/run/secrets/kubernetes.io/serviceaccount" not in {m["mountPath"] for m in
                                                                   container["volumeMounts"]}
    verbs = [a[a.index("videophy") + 1] if "videophy" in a else a[1] for a in fake.argvs()]
    assert verbs == ["kustomize", "apply", "delete", "create", "get", "logs"]
