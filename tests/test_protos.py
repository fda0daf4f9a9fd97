"""The checked-in stubs (services/proto/v1) must be exactly what grpc_tools.protoc makes of protos/."""

from __future__ import annotations

import filecmp
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PROTOS = REPO / "protos"
STUBS = REPO / "services" / "proto" / "v1"  # the import package videophy_bench.proto.v1


def test_checked_in_stubs_match_regenerated(tmp_path: Path) -> None:
    from grpc_tools import protoc

    sources = sorted(p.relative_to(PROTOS).as_posix()
                     for p in (PROTOS / "videophy_bench" / "proto" / "v1").glob("*.proto"))
    assert sources, "no .proto files found"
    include = Path(protoc.__file__).parent / "_proto"  # google/protobuf/*.proto shipped with grpc_tools
    rc = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{PROTOS}",
            f"-I{include}",
            f"--python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            *sources,
        ]
    )
    assert rc == 0
    fresh = tmp_path / "videophy_bench" / "proto" / "v1"
    generated = sorted(p.name for p in fresh.iterdir())
    expected = sorted(
        f"{Path(s).stem}{suffix}" for s in sources for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")
    )
    assert generated == expected
    stale = [
        name
        for name in generated
        if not (STUBS / name).is_file() or not filecmp.cmp(fresh / name, STUBS / name, shallow=False)
    ]
    if stale:
        pytest.fail(
            f"stale stubs {stale}: regenerate with `python -m grpc_tools.protoc -Iprotos "
            "--python_out=OUT --pyi_out=OUT --grpc_python_out=OUT protos/videophy_bench/proto/v1/*.proto` "
            "and copy OUT/videophy_bench/proto/v1/* to services/proto/v1/"
        )
    leftovers = sorted(p.name for p in STUBS.glob("*_pb2*.py*") if p.name not in generated)
    assert leftovers == [], "stubs without a .proto"


def test_stubs_import_and_describe_the_services() -> None:
    from videophy_bench.proto.v1 import evaluator_pb2, generator_pb2

    assert (
        generator_pb2.DESCRIPTOR.services_by_name["GeneratorService"].full_name
        == "videophy.v1.GeneratorService"
    )
    assert "EvaluatorService" in evaluator_pb2.DESCRIPTOR.services_by_name
