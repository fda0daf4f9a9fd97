"""videophy_bench.common.storage: nothing escapes the root, writes are atomic, `intact` means intact."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from videophy_bench.common.errors import PathEscape
from videophy_bench.common.storage import Storage, safe_component, sha256_file


@pytest.mark.parametrize("name", ["p1", "A_b-c.9", "x" * 128, "0"])
def test_safe_component_accepts_plain_names(name: str) -> None:
    assert safe_component(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        ".",
        "..",
        "../x",
        "a/b",
        "/abs",
        "a\\b",
        ".hidden",
        "-flag",
        "x" * 129,
        "a b",
        "a\x00b",
        "name\n",
        "é",
    ],
)
def test_safe_component_refuses_separators_dots_and_oddities(name: str) -> None:
    with pytest.raises(PathEscape):
        safe_component(name, "request_id")


@pytest.mark.parametrize("uri", ["", "/etc/passwd", "..", "../x", "a/../../x", "a/../..", "x\x00y"])
def test_resolve_refuses_escapes(tmp_path: Path, uri: str) -> None:
    with pytest.raises(PathEscape):
        Storage(tmp_path / "root").resolve(uri)


def test_resolve_refuses_symlink_out_of_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    store = Storage(root)
    (tmp_path / "outside").mkdir()
    os.symlink(tmp_path / "outside", root / "link")
    with pytest.raises(PathEscape):
        store.resolve("link/video.mp4")
    with pytest.raises(PathEscape):
        store.write_bytes_atomic("link/video.mp4", b"x")
    assert list((tmp_path / "outside").iterdir()) == []


def test_resolve_and_uri_of_round_trip(tmp_path: Path) -> None:
    store = Storage(tmp_path)
    path = store.resolve("videos/p1/r1.mp4")
    assert path == tmp_path.resolve() / "videos" / "p1" / "r1.mp4"
    assert store.uri_of(path) == "videos/p1/r1.mp4"
    with pytest.raises(PathEscape):
        store.uri_of(tmp_path.parent / "elsewhere.mp4")


def test_atomic_write_creates_parents_and_leaves_no_temp_files(tmp_path: Path) -> None:
    store = Storage(tmp_path)
    path = store.write_bytes_atomic("a/b/c.bin", b"payload")
    assert path.read_bytes() == b"payload"
    store.write_bytes_atomic("a/b/c.bin", b"second")
    assert path.read_bytes() == b"second"
    assert sorted(p.name for p in path.parent.iterdir()) == ["c.bin"]
    # Readable by the other services, which may run as another user on the shared volume.
    assert stat.S_IMODE(path.stat().st_mode) & 0o044 == 0o044


def test_atomic_write_failure_keeps_the_old_file_and_cleans_up(tmp_path: Path) -> None:
    store = Storage(tmp_path)
    store.write_bytes_atomic("v.mp4", b"old")
    with pytest.raises(RuntimeError), store.atomic_path("v.mp4", suffix=".mp4") as tmp:
        tmp.write_bytes(b"half a vid")
        raise RuntimeError("encoder crashed")
    assert (tmp_path / "v.mp4").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4"]


def test_readers_never_see_a_partial_file(tmp_path: Path) -> None:
    store = Storage(tmp_path)
    blobs = [bytes([i]) * 200_000 for i in range(1, 6)]
    store.write_bytes_atomic("x.bin", blobs[0])
    seen: set[bytes] = set()
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            data = (tmp_path / "x.bin").read_bytes()
            seen.add(data[:1] + data[-1:] + str(len(data)).encode())

    t = threading.Thread(target=read)
    t.start()
    for _ in range(10):
        for blob in blobs:
            store.write_bytes_atomic("x.bin", blob)
    stop.set()
    t.join()
    assert seen <= {b[:1] + b[-1:] + b"200000" for b in blobs}


def test_intact(tmp_path: Path) -> None:
    store = Storage(tmp_path)
    path = store.write_bytes_atomic("v.mp4", b"video bytes")
    digest = sha256_file(path)
    assert store.intact("v.mp4") and store.intact("v.mp4", digest)
    assert not store.intact("v.mp4", "0" * 64)
    assert not store.intact("missing.mp4")
    assert not store.intact("../v.mp4")  # an escape is simply not intact
    path.write_bytes(b"")
    assert not store.intact("v.mp4")
    path.write_bytes(b"video bytez")
    assert not store.intact("v.mp4", digest)
