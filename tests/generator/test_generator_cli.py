"""`python -m videophy_bench.generator`: flags, environment variables, startup errors, and a real process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from generator_harness import SERVING, generate, request, wait_for_health

from videophy_bench.common.channel import ClientConfig
from videophy_bench.common.settings import env_name
from videophy_bench.generator.cli import build_parser, main

REPO = Path(__file__).resolve().parents[2]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDEOPHY_") or k == "VIDEOPHY_CACHE"}
    return {**env, "PYTHONPATH": str(REPO), **extra}


def test_help_documents_every_flag_with_its_env_var() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "videophy_bench.generator", "--help"],
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    text = " ".join(out.split())  # argparse wraps lines anywhere
    flags = [a.option_strings[-1] for a in build_parser()._actions if a.option_strings and a.dest != "help"]
    assert len(flags) >= 15
    missing = [f for f in flags if f not in text or f"[env {env_name(f)}" not in text]
    assert missing == []
    assert "VIDEOPHY_MODEL" in text and "tiny-moe" in text  # the preset choices are listed


def test_flags_read_from_environment_and_cli_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDEOPHY_MODEL", "tiny-moe")
    monkeypatch.setenv("VIDEOPHY_GRACE_S", "7.5")
    monkeypatch.setenv("VIDEOPHY_NO_WARMUP", "true")
    monkeypatch.setenv("VIDEOPHY_BIND", "0.0.0.0:6000")
    args = build_parser().parse_args([])
    assert (args.model, args.grace_s, args.no_warmup, args.bind) == ("tiny-moe", 7.5, True, "0.0.0.0:6000")
    args = build_parser().parse_args(["--model", "tiny", "--grace-s", "1"])
    assert (args.model, args.grace_s) == ("tiny", 1.0)
    monkeypatch.setenv("VIDEOPHY_NO_WARMUP", "0")
    assert build_parser().parse_args([]).no_warmup is False


@pytest.mark.parametrize(
    ("env", "argv", "needle"),
    [
        ({}, ["--model", "wan9-imaginary"], "invalid choice"),
        ({"VIDEOPHY_MODEL": "wan9-imaginary"}, [], "VIDEOPHY_MODEL"),
        ({"VIDEOPHY_GRACE_S": "soon"}, [], "VIDEOPHY_GRACE_S"),
        ({"VIDEOPHY_NO_WARMUP": "maybe"}, [], "VIDEOPHY_NO_WARMUP"),
    ],
)
def test_bad_configuration_exits_at_startup(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    argv: list[str],
    needle: str,
) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(SystemExit) as exc:
        main(argv)  # before anything is loaded or bound
    assert exc.value.code != 0
    assert needle in f"{exc.value.code}{capsys.readouterr().err}"


def test_real_process_serves_then_drains_on_sigterm(tmp_path: Path) -> None:
    """The module entry point as a pod runs it: port file, warm-up before ready, SIGTERM -> exit 0."""
    port_file = tmp_path / "port"
    env = _env(
        VIDEOPHY_MODEL="tiny",
        VIDEOPHY_PORT_FILE=str(port_file),
        VIDEOPHY_GRACE_S="20",
        VIDEOPHY_LOG_LEVEL="WARNING",
    )  # some flags through the environment, as a ConfigMap would
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "videophy_bench.generator",
            "--bind",
            "127.0.0.1:0",
            "--storage-root",
            str(tmp_path / "storage"),
            "--device",
            "cpu",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not port_file.exists():
            assert proc.poll() is None, proc.communicate()[0]
            assert time.monotonic() < deadline, "no port file"
            time.sleep(0.1)
        target = f"127.0.0.1:{int(port_file.read_text())}"

        async def use() -> None:
            await wait_for_health(target, "readiness", SERVING, timeout_s=120)
            async with ClientConfig().open(target) as ch:
                _, res = await generate(ch, request("proc", steps=2))
            assert (tmp_path / "storage" / res.artifact.uri).is_file()
            assert res.model.preset == "tiny"

        asyncio.run(use())
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
