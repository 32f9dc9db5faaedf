"""The data order of one phase-2 worker: its own shuffle of the training set, resumable from any position.

Every worker draws batches of indices from a permutation that depends only on ``(seed, worker, epoch)``, so
worker w sees exactly the same batches whether it runs as process w of a distributed run or as the w-th worker
of a single-process (sequential) run, and a resumed run continues at the same batch by arithmetic, without
replaying the data. Batches are full (the tail of each epoch is dropped) so every step has the phase-2 batch size.
"""

from collections.abc import Iterator

import numpy as np
import torch


def derived_seed(*entropy: int) -> int:
    """A 32-bit seed from several integers (independent streams for (seed, worker, epoch) tuples); 32 bits because
    NumPy's legacy seeding, which ``transformers.set_seed`` uses, accepts no more."""
    return int(np.random.SeedSequence([int(value) for value in entropy]).generate_state(1, dtype=np.uint32)[0])


class WorkerBatchSampler:
    """Endless batches of dataset indices for worker ``worker`` of ``num_workers``, starting at batch ``start``.

    ``order="full"``: each epoch is a permutation of all ``num_examples`` indices; ``order="shard"``: of the
    indices ``i`` with ``i % num_workers == worker``.
    """

    def __init__(
        self,
        num_examples: int,
        batch_size: int,
        *,
        seed: int,
        worker: int,
        num_workers: int,
        order: str = "full",
        start: int = 0,
    ):
        if order not in ("full", "shard"):
            raise ValueError(f"order must be 'full' or 'shard', got {order!r}")
        if not 0 <= worker < num_workers:
            raise ValueError(f"worker must be in [0, {num_workers}), got {worker}")
        self.pool = torch.arange(num_examples) if order == "full" else torch.arange(worker, num_examples, num_workers)
        if len(self.pool) < batch_size:
            raise ValueError(
                f"phase2_batch_size ({batch_size}) is larger than the {len(self.pool)} examples worker {worker} "
                f"draws from (data order {order!r})"
            )
        self.batch_size, self.seed, self.worker, self.start = batch_size, seed, worker, start
        self.batches_per_epoch = len(self.pool) // batch_size

    def epoch_order(self, epoch: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(derived_seed(self.seed, self.worker, epoch))
        return self.pool[torch.randperm(len(self.pool), generator=generator)]

    def __iter__(self) -> Iterator[list[int]]:
        epoch, offset = divmod(self.start, self.batches_per_epoch)
        while True:
            order = self.epoch_order(epoch)
            for batch in range(offset, self.batches_per_epoch):
                yield order[batch * self.batch_size : (batch + 1) * self.batch_size].tolist()
            epoch, offset = epoch + 1, 0
