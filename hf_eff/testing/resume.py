"""Crash-resume testing: kill a training job with SIGKILL at a chosen step, resume it in fresh processes, and check
that it ends exactly where the uninterrupted job ends.

A preempted job dies without any cleanup and is restarted from scratch with ``resume_from_checkpoint=True``; every
piece of state a method keeps outside the weights (masks, bandit statistics, snapshots, averaged weights, ...) must
come back from the checkpoint or the resumed model differs. This harness reproduces that faithfully:

1. the *uninterrupted* job trains to the end in fresh processes;
2. the *killed* job trains the same recipe in another output folder; at the end of optimizer step ``kill_at_step``
   (before anything of that step is saved) the chosen rank sends itself SIGKILL; the other ranks, blocked in the
   next collective, are then killed too, as a launcher tears down a job whose worker died;
3. the *resumed* job starts in fresh processes in the killed job's folder with ``resume_from_checkpoint=True``;
4. every rank of both finished jobs writes its outcome (weights, optimizer and scheduler state, every
   ``ExportableState`` callback's ``state()``, and whatever state the recipe adds) and
   :func:`assert_same_outcome` compares them bit for bit, listing every difference.

A recipe is a function ``recipe(output_dir, **options)`` that builds a ready-to-train ``Trainer`` writing its
checkpoints to ``output_dir`` (with ``save_strategy="steps"`` and ``use_cpu=True``, and
``restore_callback_states_from_checkpoint=True`` if it has stateful callbacks). It may return
``(trainer, extra_state)`` where ``extra_state(trainer)`` returns the method's own state (nested dicts/lists of
tensors and JSON values), e.g. ``{"masks": trainer.mask_manager.state_dict()}``. It is named as
``"package.module:function"`` or ``"/path/to/file.py:function"`` because it runs in fresh processes; ``options``
are JSON. A method plugs in with a recipe and one test::

    def test_my_method_resumes_exactly(tmp_path):
        result = crash_resume("tests/my_method/recipes.py:my_recipe", tmp_path, kill_at_step=7, world_size=2)
        result.assert_identical()

Every worker is a new process forked from a fork server that has imported torch and transformers once (a plain
``python`` start pays that import, about 8 s of CPU, for each of the 3 to 6 processes of a test); it shares nothing
with the test process or with the other workers. Multi-process jobs use gloo on CPU, one thread per process,
launched like ``torchrun`` (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ... in the environment). Workers leave through ``os._exit(0)`` after tearing the process group
down, which avoids the sporadic gloo abort at interpreter exit (HF_CONVENTIONS §0 item 7). With several ranks,
choose ``kill_at_step`` off the checkpoint steps: the surviving ranks could otherwise be killed while writing one.
"""

import argparse
import importlib
import importlib.util
import json
import multiprocessing as mp
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from hf_eff.callbacks._state_file import load_state_file, save_state_file
from hf_eff.testing.distributed import free_port


__all__ = ["CrashResumeResult", "assert_same_outcome", "crash_resume", "load_recipe", "run_training"]

OUTCOME_FILE = "outcome-rank{rank}.safetensors"
PRELOAD = ["torch", "transformers", "transformers.trainer", "hf_eff.testing.resume"]  # imported once, in the server


# ----------------------------------------------------------------------------------------------------------------
# inside a worker process
def load_recipe(spec: str) -> Callable[..., Any]:
    """The function named by ``"package.module:function"`` or ``"/path/to/file.py:function"``."""
    if not isinstance(spec, str) or spec.count(":") != 1:
        raise ValueError(f"recipe must be 'module:function' or 'path/to/file.py:function', got {spec!r}")
    where, name = spec.split(":")
    if where.endswith(".py"):
        module_spec = importlib.util.spec_from_file_location(Path(where).stem, where)
        if module_spec is None or not Path(where).is_file():
            raise ValueError(f"recipe file {where} does not exist")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_spec.name] = module
        module_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(where)
    recipe = getattr(module, name, None)
    if not callable(recipe):
        raise ValueError(f"recipe {spec!r}: {where} has no function {name!r}")
    return recipe


def _kill_at_step_callback(step: int):
    from transformers import TrainerCallback

    class KillAtStep(TrainerCallback):
        """SIGKILL this process at the end of optimizer step ``step``, before that step is logged or saved."""

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == step:
                sys.stdout.flush()
                sys.stderr.flush()
                os.kill(os.getpid(), signal.SIGKILL)

    return KillAtStep()


def collect_outcome(trainer: Any, extra_state: Callable[[Any], Any] | None = None) -> dict[str, Any]:
    """What a finished run is compared on: weights, optimizer and scheduler state, every ``ExportableState``
    callback's ``state()`` (JSON), and the recipe's ``extra_state(trainer)``."""
    from transformers.trainer_callback import ExportableState

    from hf_eff.callbacks._utils import unwrap_optimizer, unwrap_scheduler

    optimizer, scheduler = unwrap_optimizer(trainer.optimizer), unwrap_scheduler(trainer.lr_scheduler)
    callbacks = {}
    for callback in trainer.callback_handler.callbacks:
        if isinstance(callback, ExportableState):
            callbacks.setdefault(type(callback).__name__, []).append(json.loads(json.dumps(callback.state())))
    return {
        "global_step": trainer.state.global_step,
        "world_size": trainer.args.world_size,
        "model": dict(trainer.model.state_dict()),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "callbacks": callbacks,
        "extra": extra_state(trainer) if extra_state is not None else None,
    }


def _worker_main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="one rank of a crash-resume test job (hf_eff.testing.resume)")
    parser.add_argument("--recipe", required=True)
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--outcome-dir", required=True)
    parser.add_argument("--options", default="{}")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--kill-at-step", type=int, default=None)
    cli = parser.parse_args(argv)

    torch.set_num_threads(1)
    built = load_recipe(cli.recipe)(cli.output_dir, **json.loads(cli.options))
    trainer, extra_state = built if isinstance(built, tuple) else (built, None)
    if cli.kill_at_step is not None:
        trainer.add_callback(_kill_at_step_callback(cli.kill_at_step))
    trainer.train(resume_from_checkpoint=True if cli.resume else None)
    rank = int(os.environ.get("RANK", 0))
    save_state_file(Path(cli.outcome_dir, OUTCOME_FILE.format(rank=rank)), collect_outcome(trainer, extra_state))
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _run_worker(argv: list[str], env: dict[str, str], log_path: str) -> None:
    """Entry of a forked worker: its environment, its log file as stdout and stderr, then :func:`_worker_main`."""
    os.environ.update(env)
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    try:
        _worker_main(argv)
    except BaseException:
        import traceback

        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)


# ----------------------------------------------------------------------------------------------------------------
# in the test process
_CONTEXT: "mp.context.ForkServerContext | None" = None


def _context() -> "mp.context.ForkServerContext":
    global _CONTEXT
    if _CONTEXT is None:
        _CONTEXT = mp.get_context("forkserver")
        _CONTEXT.set_forkserver_preload(PRELOAD)
    return _CONTEXT


class _Job:
    """``world_size`` worker processes of one training job, launched like torchrun, logs in ``log_dir``."""

    def __init__(
        self,
        recipe: str,
        output_dir: Path,
        outcome_dir: Path,
        log_dir: Path,
        *,
        options: dict[str, Any],
        world_size: int,
        resume: bool = False,
        kill_at_step: int | None = None,
        kill_rank: int = 0,
    ):
        self.outcome_dir, self.world_size = outcome_dir, world_size
        outcome_dir.mkdir(parents=True, exist_ok=True)
        log_dir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        self.logs = [log_dir / f"rank{rank}.log" for rank in range(world_size)]
        self.processes = []
        for rank in range(world_size):
            argv = [
                "--recipe", recipe,
                "--output-dir", str(output_dir),
                "--outcome-dir", str(outcome_dir),
                "--options", json.dumps(options),
            ]  # fmt: skip
            if resume:
                argv.append("--resume")
            if kill_at_step is not None and rank == kill_rank:
                argv += ["--kill-at-step", str(kill_at_step)]
            env = {"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
            if world_size > 1:
                env.update(
                    RANK=str(rank),
                    LOCAL_RANK=str(rank),
                    WORLD_SIZE=str(world_size),
                    LOCAL_WORLD_SIZE=str(world_size),
                    MASTER_ADDR="127.0.0.1",
                    MASTER_PORT=str(port),
                )
            process = _context().Process(target=_run_worker, args=(argv, env, str(self.logs[rank])))
            process.start()
            self.processes.append(process)

    def _log_tails(self) -> str:
        tails = []
        for rank, log in enumerate(self.logs):
            lines = log.read_text(errors="replace").splitlines() if log.exists() else []
            tails.append(
                f"--- rank {rank} (exit code {self.processes[rank].exitcode}), last lines:\n" + "\n".join(lines[-40:])
            )
        return "\n".join(tails)

    def kill(self) -> None:
        for process in self.processes:
            if process.exitcode is None:
                process.kill()
        for process in self.processes:
            process.join()

    def wait(self, timeout: float, kill_rank: int | None = None) -> None:
        """Wait for every rank to finish (``kill_rank=None``), or for rank ``kill_rank`` to die of SIGKILL, then
        kill the others; raise with the ranks' logs if anything else happens."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                codes = [process.exitcode for process in self.processes]
                if kill_rank is not None and codes[kill_rank] is not None:
                    if codes[kill_rank] != -signal.SIGKILL:
                        raise RuntimeError(
                            f"rank {kill_rank} was to be killed but exited with code {codes[kill_rank]} (is "
                            f"kill_at_step within max_steps?)\n{self._log_tails()}"
                        )
                    return
                if kill_rank is None and all(code is not None for code in codes):
                    if any(code != 0 for code in codes):
                        raise RuntimeError(f"a training process failed\n{self._log_tails()}")
                    return
                if kill_rank is None and any(code not in (None, 0) for code in codes):
                    raise RuntimeError(f"a training process failed\n{self._log_tails()}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the training job did not finish within {timeout} s\n{self._log_tails()}")
                time.sleep(0.1)
        finally:
            self.kill()

    def outcomes(self) -> list[dict[str, Any]]:
        paths = [self.outcome_dir / OUTCOME_FILE.format(rank=rank) for rank in range(self.world_size)]
        return [load_state_file(path, what="crash-resume outcome")[0] for path in paths]


def run_training(
    recipe: str,
    output_dir: str | Path,
    *,
    options: dict[str, Any] | None = None,
    world_size: int = 1,
    resume: bool = False,
    timeout: float = 300.0,
) -> list[dict[str, Any]]:
    """Train ``recipe`` to the end in ``world_size`` fresh processes; return every rank's outcome (see
    :func:`collect_outcome`)."""
    output_dir = Path(output_dir)
    job = _Job(
        recipe, output_dir, output_dir / "outcome", output_dir / "logs", options=options or {},
        world_size=world_size, resume=resume,
    )  # fmt: skip
    job.wait(timeout)
    return job.outcomes()


@dataclass
class CrashResumeResult:
    """Per-rank outcomes of the uninterrupted job and of the killed-then-resumed one."""

    uninterrupted: list[dict[str, Any]]
    resumed: list[dict[str, Any]]

    def assert_identical(self) -> None:
        """Every rank's outcome is bit-identical between the two jobs."""
        for rank, (expected, actual) in enumerate(zip(self.uninterrupted, self.resumed)):
            assert_same_outcome(expected, actual, label=f"rank {rank}")


def crash_resume(
    recipe: str,
    workdir: str | Path,
    *,
    kill_at_step: int,
    options: dict[str, Any] | None = None,
    world_size: int = 1,
    kill_rank: int = 0,
    timeout: float = 300.0,
) -> CrashResumeResult:
    """Run ``recipe`` uninterrupted and, alongside, killed with SIGKILL by rank ``kill_rank`` at the end of step
    ``kill_at_step``; resume the killed job in fresh processes; return both outcomes (in ``workdir``:
    ``uninterrupted/`` and ``killed/``, each with its checkpoints, ``logs/`` and ``outcome/``)."""
    if not isinstance(kill_at_step, int) or kill_at_step < 1:
        raise ValueError(f"kill_at_step must be an int >= 1, got {kill_at_step!r}")
    if not 0 <= kill_rank < world_size:
        raise ValueError(f"kill_rank must be in [0, {world_size}), got {kill_rank!r}")
    workdir, options = Path(workdir), options or {}
    full_dir, killed_dir = workdir / "uninterrupted", workdir / "killed"
    full = _Job(
        recipe, full_dir, full_dir / "outcome", full_dir / "logs", options=options, world_size=world_size
    )  # both jobs at once: each is mostly process start-up
    killed = _Job(
        recipe, killed_dir, killed_dir / "outcome", killed_dir / "logs-killed", options=options,
        world_size=world_size, kill_at_step=kill_at_step, kill_rank=kill_rank,
    )  # fmt: skip
    try:
        killed.wait(timeout, kill_rank=kill_rank)
        full.wait(timeout)
    finally:
        full.kill()
        killed.kill()
    checkpoints = sorted(killed_dir.glob("checkpoint-*"))
    if not checkpoints:
        raise RuntimeError(f"the killed job wrote no checkpoint before step {kill_at_step}; nothing to resume from")
    resumed = run_training(recipe, killed_dir, options=options, world_size=world_size, resume=True, timeout=timeout)
    return CrashResumeResult(full.outcomes(), resumed)


def assert_same_outcome(expected: Any, actual: Any, label: str = "outcome") -> None:
    """Raise ``AssertionError`` listing every path where two outcomes differ (tensors compared bit for bit, with
    their dtypes and shapes, and the largest absolute difference reported)."""
    differences: list[str] = []
    _compare(expected, actual, label, differences)
    if differences:
        shown = "\n  ".join(differences[:30])
        more = f"\n  ... and {len(differences) - 30} more" if len(differences) > 30 else ""
        raise AssertionError(
            f"resumed run differs from the uninterrupted one at {len(differences)} places:\n  {shown}{more}"
        )


def _compare(expected: Any, actual: Any, path: str, differences: list[str]) -> None:
    if isinstance(expected, torch.Tensor) or isinstance(actual, torch.Tensor):
        if not (isinstance(expected, torch.Tensor) and isinstance(actual, torch.Tensor)):
            differences.append(f"{path}: {type(expected).__name__} vs {type(actual).__name__}")
        elif expected.dtype != actual.dtype or expected.shape != actual.shape:
            differences.append(f"{path}: {expected.dtype}{list(expected.shape)} vs {actual.dtype}{list(actual.shape)}")
        elif not torch.equal(expected, actual):
            gap = (expected.double() - actual.double()).abs().max().item() if expected.numel() else 0.0
            differences.append(f"{path}: tensors differ (max abs difference {gap:.3g})")
    elif isinstance(expected, dict) and isinstance(actual, dict):
        for key in [*expected, *(key for key in actual if key not in expected)]:
            if key not in actual or key not in expected:
                differences.append(
                    f"{path}/{key}: only in the {'uninterrupted' if key in expected else 'resumed'} run"
                )
            else:
                _compare(expected[key], actual[key], f"{path}/{key}", differences)
    elif isinstance(expected, (list, tuple)) and isinstance(actual, (list, tuple)) and len(expected) == len(actual):
        for i, (a, b) in enumerate(zip(expected, actual)):
            _compare(a, b, f"{path}/{i}", differences)
    elif expected != actual and not (_is_nan(expected) and _is_nan(actual)):
        differences.append(f"{path}: {expected!r:.120} vs {actual!r:.120}")


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and value != value


if __name__ == "__main__":
    _worker_main()
