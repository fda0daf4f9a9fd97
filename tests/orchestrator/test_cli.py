"""The CLI's delegations reach the other packages' entry points (imported lazily)."""

from __future__ import annotations

import pytest

from services.orchestrator import cli


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
