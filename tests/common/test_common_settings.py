"""videophy_bench.common.settings: every flag can come from VIDEOPHY_<FLAG>, checked like a flag would be."""

from __future__ import annotations

import argparse

import pytest

from videophy_bench.common.settings import add_server_flags, env_flag, env_name, read_token


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(allow_abbrev=False)
    add_server_flags(p, 5000)
    env_flag(p, "--mode", default="a", choices=["a", "b"], help="mode")
    env_flag(p, "--count", default=1, type=int, help="count")
    env_flag(p, "--fast", action="store_true", default=False, help="fast")
    return p


def test_env_name() -> None:
    assert env_name("--storage-root") == "VIDEOPHY_STORAGE_ROOT"


def test_defaults_env_and_cli_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    args = _parser().parse_args([])
    assert (args.bind, args.mode, args.count, args.fast, args.grace_s) == (
        "127.0.0.1:5000",
        "a",
        1,
        False,
        900.0,
    )
    monkeypatch.setenv("VIDEOPHY_MODE", "b")
    monkeypatch.setenv("VIDEOPHY_COUNT", "3")
    monkeypatch.setenv("VIDEOPHY_FAST", "yes")
    args = _parser().parse_args([])
    assert (args.mode, args.count, args.fast) == ("b", 3, True)
    args = _parser().parse_args(["--mode", "a", "--count", "4"])
    assert (args.mode, args.count) == ("a", 4)


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("VIDEOPHY_MODE", "c"),
        ("VIDEOPHY_COUNT", "many"),
        ("VIDEOPHY_FAST", "perhaps"),
        ("VIDEOPHY_GRACE_S", "1h"),
    ],
)
def test_bad_env_values_exit_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], var: str, value: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(SystemExit) as exc:
        _parser()
    assert exc.value.code == 2  # a usage error, like a bad flag
    err = capsys.readouterr().err
    assert var in err and err.count("\n") == 1


def test_help_names_the_variable(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for flag in ("--bind", "--auth-token-file", "--mode", "--fast"):
        assert f"[env {env_name(flag)}" in text


def test_read_token(tmp_path) -> None:
    assert read_token(None, None) is None and read_token("", None) is None
    assert read_token("t", None) == "t"
    (tmp_path / "tok").write_text("from-file\n")
    assert read_token("t", str(tmp_path / "tok")) == "from-file"  # the mounted Secret wins
    (tmp_path / "empty").write_text("\n")
    assert read_token(None, str(tmp_path / "empty")) is None
