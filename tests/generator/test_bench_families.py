"""bench/bench_families.py on the CPU with tiny configs: every family's transformer builds from its
config, takes the inputs built for its pipeline's call, and the generic `lossless` keeps its output
(equal to eager) while routing masked attention calls to SDPA and the rest to the fast kernel.

The full-size numbers come from the same script on the GPU (docs/performance.md, "Model families")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")

ROOT = Path(__file__).resolve().parents[2]
FAMILIES = ("wan", "ltx", "cogvideox", "cosmos", "hunyuanvideo")


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("families")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": f"{ROOT}"}
    cmd = [sys.executable, str(ROOT / "bench" / "bench_families.py"), "--tiny", "--device", "cpu",
           "--reps", "2", "--out", str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((out / "families.json").read_text())


def test_every_family_runs_eager_and_lossless_with_equal_outputs(dry_run: dict) -> None:
    fams = dry_run["families"]
    assert list(fams) == list(FAMILIES)
    for name, rec in fams.items():
        assert "error" not in rec and "error" not in rec["lossless"], (name, rec)
        assert rec["eager"]["reps"] == 2 and rec["lossless"]["reps"] == 2
        cmp = rec["lossless"]["vs_eager"]
        assert cmp["finite"] and cmp["ref_finite"], name
        assert cmp["rel_l2"] < 1e-5, (name, cmp)  # fp32 on the CPU, same kernels: equal up to reordering


def test_masked_attention_goes_to_sdpa_and_unmasked_to_the_fast_kernel(dry_run: dict) -> None:
    seen = {name: rec["lossless"].get("attention_calls_seen") for name, rec in dry_run["families"].items()}
    # LTX: self-attention unmasked, cross-attention to the prompt masked
    assert {(c["kernel"], c["masked"]) for c in seen["ltx"]} == {("native-as-fast", False), ("native", True)}
    # HunyuanVideo: joint video+text attention always carries the text padding mask
    assert {(c["kernel"], c["masked"]) for c in seen["hunyuanvideo"]} == {("native", True)}
    # Cosmos: no masks; its processor has no per-module backend and follows the active one
    assert {(c["kernel"], c["masked"]) for c in seen["cosmos"]} == {("native-as-fast", False)}
    # CogVideoX: its processor calls torch SDPA directly, outside diffusers' dispatcher
    assert seen["cogvideox"] == []
    assert seen["wan"] is None  # Wan runs the project's own apply_acceleration


def test_project_path_facts_name_what_set_attention_cannot_reach(dry_run: dict) -> None:
    fams = dry_run["families"]
    assert fams["cogvideox"]["routing_facts"]["with_per_module_backend"] == 0
    assert fams["cosmos"]["routing_facts"]["with_per_module_backend"] == 0
    assert fams["ltx"]["routing_facts"]["lacking_is_cross_attention_attr"] == 4  # 2 blocks x (attn1, attn2)
    # The project's regional compile finds the blocks of every family (services/generator/acceleration.py
    # falls back to _no_split_modules where diffusers declares no _repeated_blocks: CogVideoX, Cosmos).
    for name in ("cogvideox", "cosmos", "ltx", "hunyuanvideo"):
        project = fams[name]["project_path"]
        assert project["compilable_blocks"] > 0, name
        assert project["ok"] and project["vs_eager"]["rel_l2"] < 1e-5, (name, project)
