"""Fixtures shared by the deployment tests: the loopback Hub, and a fake kubectl answering with the
real rendering of the gpu overlay."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import huggingface_hub
import pytest
import yaml
from deploy_support import K8S, render_docs, require_tool
from loopback_hub import LoopbackHub
from test_cluster import FakeKubectl


@pytest.fixture()
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackHub]:
    h = LoopbackHub()
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", h.url)
    monkeypatch.setenv("HF_ENDPOINT", h.url)
    yield h
    h.close()


@pytest.fixture()
def gpu_fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeKubectl:
    require_tool("kubectl")
    rendered = yaml.safe_dump_all(render_docs(K8S / "overlays" / "gpu"))  # before the fake shadows kubectl
    fake = FakeKubectl(tmp_path, monkeypatch)
    fake.render.write_text(rendered)
    return fake
