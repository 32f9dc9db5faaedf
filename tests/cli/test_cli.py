import subprocess
import sys

import pytest

from hf_eff import __version__
from hf_eff.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hf_eff.cli", *args], capture_output=True, text=True, timeout=300)


def test_help_lists_the_main_commands():
    result = run_cli("--help")
    assert result.returncode == 0
    assert "tour" in result.stdout and "bench" in result.stdout


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert __version__ in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["no-such-command"], "invalid choice"),
        (["tour", "--seed", "x"], "invalid int value"),
        (["bench", "no-such-method"], "unknown method 'no-such-method'"),
        (["bench"], "required"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_code_2(args, message):
    result = run_cli(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert "Traceback" not in result.stderr


def test_bench_list_names_every_registered_benchmark(capsys):
    from hf_eff.bench import available_benchmarks

    assert main(["bench", "list"]) == 0
    out = capsys.readouterr().out
    for name in available_benchmarks():
        assert name in out


def test_tour_with_no_methods_still_runs_and_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("hf_eff.bench.runner.available_benchmarks", lambda: {})
    assert main(["tour", "--output_dir", str(tmp_path)]) == 0
    assert "No method has landed yet" in capsys.readouterr().out
    assert (tmp_path / "tour.md").exists() and (tmp_path / "tour.json").read_text().strip() == "[]"


@pytest.mark.slow
def test_tour_runs_every_landed_method_without_failures(tmp_path):
    import json

    from hf_eff.bench import available_benchmarks

    result = run_cli("tour", "--output_dir", str(tmp_path))
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads((tmp_path / "tour.json").read_text())
    assert [row["method"] for row in rows] == list(available_benchmarks())
    assert all(row["effect"] != "failed" for row in rows), rows
