"""Run a function in several CPU processes joined in one gloo process group, and get every rank's result.

This is what the multi-process tests use (``SWAPCallback``, masks identical across ranks, reversible nets under
DDP, ...). It avoids the traps listed in HF_CONVENTIONS: ``accelerate launch --cpu`` silently runs one process, and
gloo processes under torch 2.13 sometimes abort at interpreter exit; here each worker reports its result over a
pipe, tears the process group down and leaves with ``os._exit(0)`` so the abort cannot happen.

Inside ``fn``, ``torch.distributed`` is already initialised (gloo) and the usual launcher environment is set
(``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``), so ``Trainer``/``Accelerator``
pick the group up as a multi-CPU run (build them with ``use_cpu=True`` / ``cpu=True``).
"""

import multiprocessing as mp
import os
import pickle
import socket
import sys
import traceback
from collections.abc import Callable
from typing import Any


class DistributedWorkerError(RuntimeError):
    """A worker raised; the message holds the worker's rank and traceback."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _worker(fn: Callable, args: tuple, kwargs: dict, rank: int, world_size: int, port: int, conn) -> None:
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world_size),
        LOCAL_WORLD_SIZE=str(world_size),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        OMP_NUM_THREADS="1",
    )
    status, payload = "ok", None
    try:
        import torch
        import torch.distributed as dist

        torch.set_num_threads(1)
        dist.init_process_group("gloo", rank=rank, world_size=world_size)
        payload = fn(*args, **kwargs)
    except BaseException:  # report everything, including assertion errors, to the parent
        status, payload = "error", traceback.format_exc()
    # plain pickle, not multiprocessing's: tensors would otherwise travel as shared-memory handles that die
    # with this process before the parent has read them
    try:
        message = pickle.dumps((status, payload))
    except Exception:  # an unpicklable result is an error too
        message = pickle.dumps(("error", f"result of rank {rank} cannot be pickled:\n{traceback.format_exc()}"))
    try:
        conn.send_bytes(message)
    finally:
        conn.close()
        try:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)


def run_distributed(
    fn: Callable[..., Any],
    *args: Any,
    world_size: int = 2,
    timeout: float = 300.0,
    start_method: str = "fork",
    **kwargs: Any,
) -> list[Any]:
    """Call ``fn(*args, **kwargs)`` on ``world_size`` CPU ranks (gloo) and return the results ordered by rank.

    Raises :class:`DistributedWorkerError` with the failing rank's traceback if any rank raises, and
    ``TimeoutError`` (after killing the workers) if they do not finish within ``timeout`` seconds.
    ``start_method="fork"`` (default) is fast and accepts closures; ``"spawn"`` needs a picklable, importable ``fn``.
    """
    if world_size < 1:
        raise ValueError(f"world_size must be >= 1, got {world_size}")
    context = mp.get_context(start_method)
    port = free_port()
    pipes, processes = [], []
    for rank in range(world_size):
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(target=_worker, args=(fn, args, kwargs, rank, world_size, port, sender))
        process.start()
        sender.close()
        pipes.append(receiver)
        processes.append(process)

    results: list[Any] = [None] * world_size
    errors = []
    try:
        for rank, (receiver, process) in enumerate(zip(pipes, processes)):
            if not receiver.poll(timeout):
                raise TimeoutError(f"rank {rank} did not finish within {timeout} s")
            try:
                status, payload = pickle.loads(receiver.recv_bytes())
            except EOFError:
                process.join(5)
                status, payload = "error", f"rank {rank} died without a result (exit code {process.exitcode})"
            if status == "ok":
                results[rank] = payload
            else:
                errors.append(f"rank {rank}:\n{payload}")
    finally:
        for process in processes:
            process.join(10)
            if process.is_alive():
                process.kill()
                process.join()
    if errors:
        raise DistributedWorkerError("\n".join(errors))
    return results
