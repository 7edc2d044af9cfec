"""The order in which training windows are visited: resumable, and shared out between processes.

Each epoch is one permutation of all windows that depends only on (SEED, epoch),
so a resumed run sees exactly the batches an uninterrupted run would. A global
batch is cut from the permutation and each of ``world`` processes takes every
``world``-th window of it; rows are read in sorted order, which is faster on a
strided view and does not change the batch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from utils.seeding import derive_seed


class BatchOrder:
    """Hands out the window indices of each micro-batch, epoch after epoch.

    Parameters
    ----------
    n_windows : int
        Number of training windows.
    global_batch : int
        Windows per micro-batch over all processes.
    batches_per_epoch : int
        Micro-batches per epoch (steps per epoch times gradient accumulation).
    seed : int
        The SEED setting.
    rank, world : int
        This process and the number of processes.

    Examples
    --------
    >>> order = BatchOrder(10, 4, 2, seed=0)
    >>> counters = {"epoch": 0, "batch_in_epoch": 0}
    >>> rows, b = order.next(counters)
    >>> len(rows), b, counters["batch_in_epoch"]
    (4, 0, 1)
    """

    def __init__(
        self,
        n_windows: int,
        global_batch: int,
        batches_per_epoch: int,
        seed: int,
        rank: int = 0,
        world: int = 1,
    ) -> None:
        self.n_windows, self.global_batch = n_windows, global_batch
        self.batches_per_epoch, self.seed = batches_per_epoch, seed
        self.rank, self.world = rank, world
        self.perm: np.ndarray | None = None
        self.perm_epoch = -1

    def next(self, counters: dict[str, Any]) -> tuple[np.ndarray, int]:
        """This process's sorted window indices of the next micro-batch, and the batch's number.

        Advances ``counters["batch_in_epoch"]`` (and ``counters["epoch"]`` at the end of one).
        """
        # A finished epoch rolls over here, also when a resumed run starts at its end.
        if counters["batch_in_epoch"] >= self.batches_per_epoch:
            counters["epoch"] += 1
            counters["batch_in_epoch"] = 0
        if self.perm_epoch != counters["epoch"]:
            g = torch.Generator().manual_seed(derive_seed(self.seed, counters["epoch"]))
            self.perm = torch.randperm(self.n_windows, generator=g).numpy()
            self.perm_epoch = counters["epoch"]
        b = counters["batch_in_epoch"]
        chosen = self.perm[b * self.global_batch : (b + 1) * self.global_batch]
        counters["batch_in_epoch"] += 1
        return np.sort(chosen[self.rank :: self.world]), b
