"""`guarded`: a command's failure is one line on stderr; our own errors read as they are, anything else
is named by its type, with where the traceback is; no traceback without --log-level DEBUG."""

from __future__ import annotations

import pytest

from videophy_bench.common.entry import RUNTIME_FAILURE, guarded
from videophy_bench.common.errors import InvalidRequest


def _fail(exc: Exception):
    def body() -> int:
        raise exc

    return body


def test_our_errors_read_as_they_are_and_others_are_named(capsys: pytest.CaptureFixture[str]) -> None:
    assert guarded("run", _fail(InvalidRequest("height=33 must be a multiple of 16"))) == RUNTIME_FAILURE
    assert capsys.readouterr().err == "videophy-bench run: height=33 must be a multiple of 16\n"
    assert guarded("run", _fail(KeyError("x"))) == RUNTIME_FAILURE
    err = capsys.readouterr().err
    assert err == "videophy-bench run: KeyError: 'x' (--log-level DEBUG shows the traceback)\n"
