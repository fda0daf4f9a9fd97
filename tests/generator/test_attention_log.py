"""The generator's start-up names the attention kernel it uses, and why FlashAttention-3 is not used:
a real tiny backend's load on CPU, and a FlashAttention-3 module whose binary does not load (a build for
another CUDA, the case a CUDA 12 base image hits)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest
from generator_harness import tiny_backend

from videophy_bench.generator import attention


def _kernel_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("attention kernel:")]


def test_loading_logs_the_kernel_in_use(caplog: pytest.LogCaptureFixture) -> None:
    backend = tiny_backend()
    with caplog.at_level(logging.INFO, logger="videophy_bench.generator.attention"):
        backend.load()
    assert _kernel_lines(caplog) == ["attention kernel: native (SDPA); FlashAttention-3 not used: not a CUDA "
                                     "device (requested auto on cpu)"]
    assert "attn=native" in backend.acceleration


def test_a_flashattention_build_that_does_not_load_is_named_with_its_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    # A real module file whose import fails the way an extension linked against another CUDA does.
    (tmp_path / "fa3_fwd_interface.py").write_text(
        'raise ImportError("libcudart.so.13: cannot open shared object file: No such file or directory")\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "fa3_fwd_interface", raising=False)
    monkeypatch.setattr(attention, "_fa3", None)
    monkeypatch.setattr(attention, "_fa3_errors", {})
    monkeypatch.setattr(attention, "FA3_MODULES", ("fa3_fwd_interface",))
    import torch

    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))  # an H100; none here
    with caplog.at_level(logging.INFO, logger="videophy_bench.generator.attention"):
        assert attention.resolve_kernel("auto", "cuda") == ("native", "")
    (line,) = _kernel_lines(caplog)
    assert line == ("attention kernel: native (SDPA); FlashAttention-3 not used: no FlashAttention-3 module "
                    "imports (fa3_fwd_interface: ImportError: libcudart.so.13: cannot open shared object "
                    "file: No such file or directory) (requested auto on cuda)")


def test_fa3_in_use_is_named_with_its_module(monkeypatch: pytest.MonkeyPatch,
                                             caplog: pytest.LogCaptureFixture) -> None:
    module = type(sys)("fa3_fwd_interface")
    monkeypatch.setattr(attention, "_fa3", module)
    monkeypatch.setattr(attention, "fa3_unusable_reason", lambda device: None)
    monkeypatch.setattr(attention, "fa3_self_check", lambda device: 4.6e-3)
    with caplog.at_level(logging.INFO, logger="videophy_bench.generator.attention"):
        assert attention.resolve_kernel("auto", "cuda:0") == ("fa3", "")
    assert _kernel_lines(caplog) == ["attention kernel: fa3 (FlashAttention-3 via fa3_fwd_interface) for "
                                     "self-attention, SDPA for cross-attention (requested auto on cuda:0)"]
