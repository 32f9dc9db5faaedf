"""Measurements that compare a method with its baseline in the same process.

- :class:`SavedTensorsMeter` counts the bytes autograd keeps for backward: a machine-independent measure of
  training activation memory.
- :class:`PeakAllocationMeter` reads the peak of the bytes PyTorch's allocator holds (profiler memory events):
  the real peak of a training step, transient buffers included, without the allocator slack RSS carries.
- :class:`PeakRSSMeter` reads the process's peak resident memory (Linux ``VmHWM``, reset per measurement).
- :func:`compare_timings` times several callables interleaved and reports each one's ratio to a baseline.
- :func:`single_thread` runs a block with one thread in torch and in NumPy's BLAS/OpenMP pools, so timings compare
  like with like on a shared CPU.
"""

import contextlib
import ctypes
import ctypes.util
import statistics
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from threadpoolctl import threadpool_limits


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run the block with one torch thread and one BLAS/OpenMP thread (NumPy, SciPy, scikit-learn), then restore.

    NumPy's BLAS left multi-threaded on a shared machine measured up to 30x slower, and a baseline timed with more
    threads than ours would not be a like-for-like ratio.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            yield
    finally:
        torch.set_num_threads(threads)


def release_free_memory() -> None:
    """Hand freed heap pages back to the OS (glibc) so that each peak-RSS measurement starts from the same floor."""
    name = ctypes.util.find_library("c")
    if name:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(name).malloc_trim(0)


def _storage_key(tensor: torch.Tensor) -> tuple[int, int]:
    storage = tensor.untyped_storage()
    return storage.data_ptr(), storage.nbytes()


class SavedTensorsMeter:
    """Context manager counting the bytes of tensors saved for backward inside it.

    Each storage counts once however many tensors (views, repeated saves) refer to it. Tensors that belong to
    ``exclude`` (typically ``model.parameters()``, which exist whether or not anything is saved) are not counted.

    >>> with SavedTensorsMeter() as meter:
    ...     y = (x * x).sum()
    >>> meter.bytes
    """

    def __init__(self, exclude: Iterable[torch.Tensor] = ()):
        self._excluded = {_storage_key(t) for t in exclude}
        self._seen: dict[tuple[int, int], int] = {}
        self._hooks = None

    @property
    def bytes(self) -> int:
        return sum(self._seen.values())

    def _pack(self, tensor: torch.Tensor) -> torch.Tensor:
        if tensor.device.type != "meta":
            key = _storage_key(tensor)
            if key not in self._excluded:
                self._seen[key] = key[1]
        return tensor

    def count_graph_held(self, outputs: Iterable[torch.Tensor]) -> None:
        """Also count tensors that custom autograd Functions keep as attributes of their ``ctx`` (outside
        ``save_for_backward``), walking the graph behind ``outputs``. Modules reached that way are not entered
        (their parameters and buffers exist anyway)."""
        seen_nodes, stack = set(), [t.grad_fn for t in outputs if t.grad_fn is not None]
        while stack:
            node = stack.pop()
            if node is None or node in seen_nodes:
                continue
            seen_nodes.add(node)
            for tensor in _tensors_in(getattr(node, "__dict__", {}), depth=3):
                self._pack(tensor)
            stack.extend(next_node for next_node, _ in node.next_functions)

    def __enter__(self) -> "SavedTensorsMeter":
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda tensor: tensor)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)


def _tensors_in(value, depth: int) -> Iterator[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        yield value
    elif depth == 0 or isinstance(value, torch.nn.Module):
        return
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors_in(item, depth - 1)
    elif isinstance(value, (list, tuple, set)):
        for item in value:
            yield from _tensors_in(item, depth - 1)
    elif hasattr(value, "__dict__") and not isinstance(value, type):
        yield from _tensors_in(vars(value), depth - 1)


def saved_tensor_bytes(fn: Callable[[], torch.Tensor], exclude: Iterable[torch.Tensor] = ()) -> int:
    """Bytes saved for backward while ``fn()`` runs (the graph is freed before returning)."""
    with SavedTensorsMeter(exclude) as meter:
        out = fn()
    del out
    return meter.bytes


def _read_status_kib(field_name: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


@dataclass
class PeakRSSMeter:
    """Peak resident set size reached inside the context, in bytes above the RSS at entry.

    On Linux the kernel's high-water mark is reset on entry (``/proc/self/clear_refs``), so successive
    measurements in one process are independent. Elsewhere ``peak_bytes`` is ``None`` (reported, never guessed).
    """

    peak_bytes: int | None = None
    _start_kib: int | None = field(default=None, repr=False)

    @staticmethod
    def supported() -> bool:
        return _read_status_kib("VmHWM") is not None and Path("/proc/self/clear_refs").exists()

    def __enter__(self) -> "PeakRSSMeter":
        if self.supported():
            try:
                Path("/proc/self/clear_refs").write_text("5")  # 5 = reset the peak RSS to the current RSS
                self._start_kib = _read_status_kib("VmRSS")
            except OSError:
                self._start_kib = None
        return self

    def __exit__(self, *exc) -> None:
        if self._start_kib is not None:
            self.peak_bytes = 1024 * (_read_status_kib("VmHWM") - self._start_kib)


class PeakAllocationMeter:
    """Peak bytes held by PyTorch's CPU allocator inside the context, above what it held at entry.

    Read from the profiler's memory events (every allocation and free, in order), so it counts exactly the
    tensors a step creates, whatever the load of the machine: unlike RSS, no allocator slack and no pages
    another run left behind. Tensors that exist at entry (parameters, gradient buffers) are not counted.
    """

    def __init__(self):
        self.peak_bytes: int | None = None
        self._profile = None

    def __enter__(self) -> "PeakAllocationMeter":
        from torch.profiler import ProfilerActivity, profile

        self._profile = profile(activities=[ProfilerActivity.CPU], profile_memory=True)
        self._profile.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._profile.__exit__(*exc)
        events = self._profile.profiler.kineto_results.events()
        changes = sorted((e.start_ns(), e.nbytes()) for e in events if e.name() == "[memory]")
        live = peak = 0
        for _, nbytes in changes:
            live += nbytes
            peak = max(peak, live)
        self.peak_bytes = peak
        self._profile = None


@dataclass
class Timing:
    name: str
    median_s: float
    times_s: list[float]
    ratio: float  # median / baseline median


def compare_timings(
    candidates: dict[str, Callable[[], object]],
    baseline: str,
    repeats: int = 5,
    warmup: int = 1,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, Timing]:
    """Time each callable ``repeats`` times, interleaved round-robin so that drift of the machine affects
    all of them alike, and report each median as a ratio to ``baseline``'s median. ``clock=time.thread_time``
    counts the calling thread's CPU time, which other jobs on a shared machine cannot stretch (for single-threaded
    code only: work on other threads is not counted)."""
    if baseline not in candidates:
        raise ValueError(f"baseline {baseline!r} is not one of {sorted(candidates)}")
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats must be >= 1 and warmup >= 0, got {repeats} and {warmup}")
    for fn in candidates.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, fn in candidates.items():
            start = clock()
            fn()
            times[name].append(clock() - start)
    base = statistics.median(times[baseline])
    return {name: Timing(name, statistics.median(ts), ts, statistics.median(ts) / base) for name, ts in times.items()}
