"""``hf-eff``: exit codes and one-line errors, checked in a subprocess under both ways of starting it.

In-process calls of ``main`` cannot catch a class of bug that only shows when ``hf_eff.cli`` runs as ``__main__``
(a second copy of the module, hence of its exception classes), so the exit-code tests start real processes.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hf_eff import __version__
from hf_eff.cli import main


def _console_script() -> list[str]:
    installed = Path(sys.executable).with_name("hf-eff")
    script = str(installed) if installed.exists() else shutil.which("hf-eff")
    assert script, "the hf-eff console script is not installed (pip install -e .)"
    return [script]


LAUNCHERS = {"python -m hf_eff.cli": lambda: [sys.executable, "-m", "hf_eff.cli"], "hf-eff": _console_script}


def run_cli(*args: str, launcher: str = "python -m hf_eff.cli", timeout: int = 300) -> subprocess.CompletedProcess:
    command = [*LAUNCHERS[launcher](), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(result: subprocess.CompletedProcess, code: int, message: str) -> None:
    assert result.returncode == code, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_help_lists_every_discovered_command(launcher):
    result = run_cli("--help", launcher=launcher)
    assert result.returncode == 0, result.stderr
    for command in ("tour", "bench", "spdf", "bgsub"):
        assert command in result.stdout


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_version(launcher):
    result = run_cli("--version", launcher=launcher)
    assert result.returncode == 0 and result.stdout.strip() == f"hf-eff {__version__}"


@pytest.mark.parametrize("launcher", LAUNCHERS)
@pytest.mark.parametrize(
    "args, message",
    [
        (["no-such-command"], "invalid choice"),
        (["tour", "--seed", "x"], "invalid int value"),
        (["bench"], "required"),
        (["spdf", "--seq_len", "1"], "--seq_len must be >= 2"),  # a UsageError raised by the command itself
        (["bgsub", __file__, __file__, "--threshold", "high"], "--threshold: must be a number or 'auto'"),
        (["bgsub", "no-such-fg.mp4", __file__], "foreground_video: no such file: 'no-such-fg.mp4'"),
        (["bgsub", __file__, "no-such-bg.mp4"], "background_video: no such file: 'no-such-bg.mp4'"),
        (["tour", "--only", "nosuch"], "unknown method 'nosuch'"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_code_2(args, message, launcher):
    assert_one_line_error(run_cli(*args, launcher=launcher), 2, message)


@pytest.mark.parametrize(  # one launcher: these import the SPDF recipe (transformers), seconds each
    "args, message",
    [
        (["spdf", "--sparsity", "1.5"], "sparsity must be in [0, 1)"),
        (["spdf", "--model_config", "nosuch"], "model_config must be one of"),
    ],
)
def test_values_the_library_refuses_are_bad_arguments(args, message):
    assert_one_line_error(run_cli(*args, launcher="hf-eff"), 2, message)


@pytest.mark.parametrize(
    "command",
    [["tour"], ["bench", "revbifpn", "--quick"], ["spdf"], ["bgsub", __file__, __file__]],
    ids=lambda command: command[0],
)
def test_an_output_dir_that_cannot_be_created_fails_before_any_work(command, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    result = run_cli(*command, "--output_dir", str(blocker / "out"), timeout=60)
    assert_one_line_error(result, 2, f"--output_dir: cannot write to folder '{blocker / 'out'}'")
    assert list(tmp_path.iterdir()) == [blocker]


@pytest.mark.parametrize("option", ["--output", "--masks"])
def test_bgsub_output_files_are_checked_before_any_work(option, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    result = run_cli("bgsub", __file__, __file__, option, str(blocker / "x.mp4"), "--output_dir", str(tmp_path))
    assert_one_line_error(result, 2, f"{option}: cannot write '{blocker / 'x.mp4'}': {blocker} is not a folder")
    result = run_cli("bgsub", __file__, __file__, option, str(tmp_path), "--output_dir", str(tmp_path))
    assert_one_line_error(result, 2, "is a folder, expected a file path")


def test_an_unknown_benchmark_is_a_bad_argument():
    result = run_cli("bench", "no-such-method", launcher="hf-eff")
    assert_one_line_error(result, 2, "unknown method 'no-such-method'; available: bandit_lr, bgsub")


@pytest.mark.parametrize("args", [["bench", "nosuch"], ["tour", "--only", "revbifpn", "nosuch"]])
def test_an_unknown_benchmark_is_answered_without_importing_any(args):
    code = (
        f"import sys; from hf_eff.cli import main; code = main({args!r}); "
        "print(code, sorted(m for m in sys.modules if m.startswith(('torch', 'hf_eff.bench.'))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "unknown method 'nosuch'" in result.stderr
    assert result.stdout.strip() == "2 " + str(["hf_eff.bench.registry", "hf_eff.bench.report"])


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_a_failure_while_running_gives_one_line_and_exit_code_1(launcher, tmp_path):
    not_a_video = tmp_path / "not_a_video.mp4"
    not_a_video.write_text("these bytes are no video")
    result = run_cli("bgsub", str(not_a_video), str(not_a_video), "--output_dir", str(tmp_path), launcher=launcher)
    assert_one_line_error(result, 1, "cannot read")


def test_bench_list_names_every_benchmark_without_importing_any():
    from hf_eff.bench import available_benchmarks

    listing = (
        "import sys; from hf_eff.cli import main; main(['bench', 'list']); "
        "print(sorted(m for m in sys.modules if m.startswith(('torch', 'transformers', 'hf_eff.bench.'))))"
    )
    result = subprocess.run([sys.executable, "-c", listing], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    *lines, imported = result.stdout.strip().splitlines()
    listed = {line.split(maxsplit=1)[0]: line.split(maxsplit=1)[1] for line in lines}
    assert listed == {name: bench.summary for name, bench in available_benchmarks().items()}
    assert len(listed) >= 9
    assert imported == str(["hf_eff.bench.registry", "hf_eff.bench.report"])


def test_tour_with_no_methods_still_runs_and_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("hf_eff.bench.runner.available_benchmarks", lambda: {})
    assert main(["tour", "--output_dir", str(tmp_path)]) == 0
    assert "No method has landed yet" in capsys.readouterr().out
    assert (tmp_path / "tour.md").exists() and (tmp_path / "tour.json").read_text().strip() == "[]"


@pytest.mark.slow
@pytest.mark.timeout(1800)  # all quick benchmarks in one process (8 of 9 took 8.5 min on the 2-core machine)
def test_tour_runs_every_landed_method_without_failures(tmp_path):
    import json

    from hf_eff.bench import available_benchmarks

    result = run_cli("tour", "--output_dir", str(tmp_path), timeout=1800)  # every quick benchmark, one after another
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads((tmp_path / "tour.json").read_text())
    assert [row["method"] for row in rows] == list(available_benchmarks())
    assert all(row["effect"] != "failed" for row in rows), rows
