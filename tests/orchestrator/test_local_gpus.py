"""`run --local` places one generator per visible GPU (services/orchestrator/local.py), checked on a
CPU-only machine with real child processes: CUDA_VISIBLE_DEVICES lists four GPU ids, and each child's
own environment (/proc/PID/environ, what the process really got) holds exactly one of them.

Without a GPU a child told `--device cuda` cannot start, so the first test appends `--device cpu`
to the children's flags (argparse keeps the last value): everything else is what a 4-GPU host gets.
The second test shows what happens without that: GPU ids but no GPU end the start in one line.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from videophy_bench.common.channel import ClientConfig
from videophy_bench.orchestrator.clients import GeneratorClient
from videophy_bench.orchestrator.local import LocalServiceError, LocalServices, visible_gpus


def proc_env(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def proc_argv(pid: int) -> list[str]:
    return [a.decode() for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a]


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.slow
def test_one_generator_per_visible_gpu(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
    assert visible_gpus() == ["0", "1", "2", "3"]
    local = LocalServices(tmp_path / "run", tmp_path / "storage", "tiny", None,
                          extra_generator_args=["--no-warmup", "--device", "cpu"], startup_timeout_s=300)

    async def start_and_ask() -> tuple[list[str], list[str]]:
        gens, evals = await local.start()
        devices = []
        for address in gens:  # each child answers GetInfo on its own port
            client = GeneratorClient(address, ClientConfig())
            try:
                devices.append((await client.info()).runtime.device)
            finally:
                await client.close()
        assert evals == []
        return gens, devices

    try:
        gens, devices = asyncio.run(start_and_ask())
        children = [c for c in local.children if c.kind == "generator"]
        assert len(gens) == len(set(gens)) == len(children) == 4
        seen = []
        for child in children:
            assert child.proc is not None and child.proc.poll() is None
            env, argv = proc_env(child.proc.pid), proc_argv(child.proc.pid)
            seen.append(env["CUDA_VISIBLE_DEVICES"])
            assert argv[argv.index("--device") + 1] == "cuda"  # what a GPU host's child is told
            assert child.label.startswith(f"GPU {env['CUDA_VISIBLE_DEVICES']},")
        assert sorted(seen) == ["0", "1", "2", "3"]  # one child per GPU id, each sees only its own
        assert devices == ["cpu"] * 4
    finally:
        local.stop()


@pytest.mark.slow
@pytest.mark.skipif(cuda_available(), reason="a GPU is visible here: the children would start")
def test_gpu_ids_without_a_gpu_end_the_start_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    local = LocalServices(tmp_path / "run", tmp_path / "storage", "tiny", None,
                          extra_generator_args=["--no-warmup"], startup_timeout_s=300)
    try:
        with pytest.raises(LocalServiceError) as err:
            asyncio.run(local.start())
    finally:
        local.stop()
    message = str(err.value)
    assert "\n" not in message and "while starting" in message, message
    assert "device 'cuda' requested but CUDA is not available" in message, message
