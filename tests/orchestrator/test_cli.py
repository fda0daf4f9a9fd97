"""The CLI: delegations reach the other packages' entry points (imported lazily); bad input gets one line,
fast, before anything is created or started."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from videophy_bench.orchestrator import cli

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _root_log_level():
    """`main` sets the root logger's level (--log-level); each test starts from the same one."""
    level = logging.getLogger().level
    yield
    logging.getLogger().setLevel(level)


@pytest.mark.parametrize("argv", [["serve", "generator", "--help"], ["serve", "evaluator", "--help"],
                                  ["report", "--help"], ["cluster", "--help"], ["run", "--help"]])
def test_subcommands_answer_help(argv, capsys):
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse's --help exits; some entry points return instead
        code = exc.code
    assert code == 0
    assert "usage:" in capsys.readouterr().out


def test_missing_module_gives_a_clear_error(monkeypatch, capsys):
    monkeypatch.setitem(cli.DELEGATES, "judge", ("services.no_such_module", "main", "evaluator", ""))
    assert cli.main(["judge"]) == 2
    assert "pip install 'videophy-bench[evaluator]'" in capsys.readouterr().err


def test_run_without_services_is_a_usage_error(tmp_path, capsys):
    assert cli.main(["run", "--prompts", "sample", "--out", str(tmp_path / "r"), "--no-progress"]) == 2
    assert "--generators" in capsys.readouterr().err


# --- no option abbreviations ------------------------------------------------------------------------


def _every_parser() -> list[argparse.ArgumentParser]:
    """Every parser the project's entry points build, subcommands included."""
    from videophy_bench.evaluator import cli as evaluator_cli
    from videophy_bench.evaluator import judge_cli
    from videophy_bench.generator import cli as generator_cli
    from videophy_bench.orchestrator import cluster
    from videophy_bench.orchestrator.analysis import cli as analysis_cli
    from videophy_bench.orchestrator.phyt2v import loop

    todo = [
        cli.build_parser(),
        generator_cli.build_parser(),
        evaluator_cli.build_parser(),
        judge_cli._parser(),
        analysis_cli.report_parser(),
        analysis_cli.leaderboard_parser(),
        cluster.build_parser(),
        loop._parser(),
    ]
    seen: list[argparse.ArgumentParser] = []
    while todo:
        parser = todo.pop()
        seen.append(parser)
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                todo.extend(action.choices.values())
    return seen


def test_every_parser_refuses_abbreviations():
    parsers = _every_parser()
    assert len(parsers) > 15  # the subcommands were walked too
    assert [p.prog for p in parsers if p.allow_abbrev] == []


@pytest.mark.parametrize(
    "argv",
    [
        ["serve", "generator", "--port", "1"],  # once taken as --port-file 1
        ["run", "--prompt", "sample", "--out", "x", "--local"],
        ["prompts", "sample", "--out", "p.csv", "--rev", "main"],
    ],
)
def test_abbreviated_options_are_refused(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    assert "unrecognized arguments" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # no port file "1", no run directory


def test_healthcheck_refuses_abbreviations(capsys):
    from videophy_bench.common import healthcheck

    with pytest.raises(SystemExit) as exc:
        healthcheck.main(["--timeout", "1"])  # a prefix of --timeout-s
    assert exc.value.code == 2


# --- refused before anything is created or started -------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--local", "--model", "nope"], ["unknown generator preset", "wan2.2-t2v-a14b", "tiny-moe"]),
        (["--local", "--model", "tiny", "--judge-model", "nope"], ["--judge-model", "videophy_2_auto"]),
        (
            ["--local", "--model", "tiny", "--judge-tasks", "sa,videocon_sa", "--videocon-model", "nope"],
            ["--videocon-model", "videocon_physics"],
        ),
        (["--generators", "127.0.0.1:1", "--model", "wan9"], ["unknown generator preset"]),
        (["--local", "--model", "wan2.2-t2v-a14b", "--no-judge"], ["a14b needs a GPU", "--allow-cpu"]),
        (
            ["--local", "--model", "tiny", "--judge-model", "videophy_2_auto"],
            ["--judge-model videophy_2_auto needs a GPU", "--allow-cpu"],
        ),
        (["--local", "--model", "tiny", "--storage-root", "elsewhere"], ["must be inside --storage-root"]),
        ([], ["--generators"]),
        (["--local", "--model", "tiny", "--prompts", "missing.csv"], ["no such file"]),
        (["--local", "--model", "tiny", "--ids", "s01,nope"], ["unknown prompt ids: nope"]),
        (["--local", "--model", "tiny", "--seeds", "100000000000"], ["--seeds must be in 1..1000"]),
        (["--local", "--model", "tiny", "--steps", "-5"], ["num_inference_steps=-5 must be in 1..200"]),
        (["--local", "--model", "tiny", "--height", "100000"], ["height=100000"]),
        (["--local", "--model", "tiny", "--num-frames", "10"], ["num_frames=10 must be 4k+1"]),
        (["--local", "--guidance-scale-2", "3", "--no-judge"], ["guidance_scale_2 needs a two-expert model"]),
        (["--local", "--model", "tiny", "--negative-prompt", "x" * 9000], ["the limit is 8000"]),
        (["--local", "--model", "tiny", "--negative-prompt", "a\x00b"], ["NUL"]),
    ],
)
def test_refused_run_creates_and_starts_nothing(extra, words, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # no GPU visible, whatever this machine has
    argv = ["run", "--prompts", "sample", "--out", "runs/r", "--no-progress", *extra]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("videophy-bench run: "), err
    assert all(w in err[0] for w in words), err[0]
    assert list(tmp_path.iterdir()) == []  # no run directory, no storage root, no child logs


def test_out_that_is_a_file_is_refused_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "taken").write_text("not a run")
    assert cli.main(["run", "--local", "--model", "tiny", "--prompts", "sample", "--out", "taken"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["videophy-bench run: --out taken exists and is not a directory"]
    assert [p.name for p in tmp_path.iterdir()] == ["taken"]


# --- one line, no traceback ---------------------------------------------------------------------------


def test_unexpected_error_is_one_line_and_its_traceback_needs_debug(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    out = str(blocker / "prompts.csv")  # its folder is a file: an OSError deep inside
    assert cli.main(["prompts", "sample", "--out", out]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("videophy-bench prompts: FileExistsError") and "--log-level DEBUG" in err
    assert cli.main(["--log-level", "DEBUG", "prompts", "sample", "--out", out]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_bad_log_level_is_one_line(tmp_path, capsys):
    assert cli.main(["--log-level", "LOUD", "status", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--log-level LOUD" in err


# --- the Hub unreachable: one line, in seconds --------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:  # bound then closed: connecting is refused at once
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _offline_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("HF_HUB_OFFLINE", None)
    env.update(
        HF_ENDPOINT=f"http://127.0.0.1:{_closed_port()}",
        HF_HOME=str(tmp_path / "hf-home"),  # a cold cache
        PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]),
        CUDA_VISIBLE_DEVICES="",
    )
    return env


def test_prompts_with_the_hub_unreachable_is_one_line_in_seconds(tmp_path):
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "videophy_bench.orchestrator.cli", "prompts",
         "--out", str(tmp_path / "p.csv")],
        env=_offline_env(tmp_path), capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    elapsed = time.monotonic() - start
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Hub is unreachable" in lines[0] and "prompts PATH" in lines[0] and "HF_HUB_OFFLINE=1" in lines[0]
    assert elapsed < 15, elapsed  # huggingface_hub alone retries for ~23 s
    assert not (tmp_path / "p.csv").exists()


def test_local_child_that_cannot_load_its_model_is_one_line_with_its_log(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "videophy_bench.orchestrator.cli", "run", "--local",
         "--model", "wan2.2-ti2v-5b",
         "--allow-cpu", "--no-judge", "--prompts", "sample", "--limit", "1", "--out", str(out),
         "--no-progress", "--startup-timeout-s", "300"],
        env=_offline_env(tmp_path), capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("videophy-bench run:")]
    assert len(errors) == 1, proc.stderr
    assert "generator-0 (pid " in errors[0] and "exited with code 1 while starting: " in errors[0]
    assert "--model-path" in errors[0] and f"log: {out / 'logs' / 'generator-0.log'}" in errors[0]
    assert "Traceback" not in (out / "logs" / "generator-0.log").read_text()
