"""CI fails when the test command fails, including when pytest collected no tests (exit 5): a run that tested nothing
must not pass. ``.ci/run`` and the GitHub workflow run with stand-ins for python/ruff whose pytest exits as told."""

import os
import subprocess
from pathlib import Path

import pytest
import yaml


ROOT = Path(__file__).resolve().parents[2]

# stand-ins: `python3 -m venv DIR` makes an empty venv; `python -m pytest` exits with $FAKE_PYTEST_EXIT; the rest succeed
FAKE_PYTHON = """#!/usr/bin/env bash
if [ "$1 $2" = "-m venv" ]; then mkdir -p "$3/bin" && touch "$3/bin/activate"; exit 0; fi
if [ "$1 $2" = "-m pytest" ]; then exit "$FAKE_PYTEST_EXIT"; fi
exit 0
"""


@pytest.fixture
def fake_tools(tmp_path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("python", FAKE_PYTHON), ("python3", FAKE_PYTHON), ("ruff", "#!/usr/bin/env bash\nexit 0\n")):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    return bin_dir


def _run(command: list[str], fake_tools: Path, pytest_exit: int) -> int:
    env = {**os.environ, "PATH": f"{fake_tools}:{os.environ['PATH']}", "FAKE_PYTEST_EXIT": str(pytest_exit)}
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, timeout=60).returncode


def _workflow_test_step() -> str:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "tests.yml").read_text())
    steps = workflow["jobs"]["tests"]["steps"]
    return next(step["run"] for step in steps if "pytest" in step.get("run", ""))


@pytest.mark.parametrize("pytest_exit, ci_passes", [(0, True), (1, False), (5, False)])
def test_ci_script_passes_only_when_tests_ran_and_passed(fake_tools, pytest_exit, ci_passes):
    assert (_run(["bash", ".ci/run"], fake_tools, pytest_exit) == 0) == ci_passes


@pytest.mark.parametrize("pytest_exit, ci_passes", [(0, True), (1, False), (5, False)])
def test_workflow_test_step_passes_only_when_tests_ran_and_passed(fake_tools, pytest_exit, ci_passes):
    # GitHub runs a `run:` block with `bash -e {0}`
    assert (_run(["bash", "-e", "-c", _workflow_test_step()], fake_tools, pytest_exit) == 0) == ci_passes
