"""Run a block of torch work on one CPU thread."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one CPU thread inside the block, then restore the thread count.

    For small or sequential work (an ``L x L`` eigendecomposition, phase retrieval
    on a few windows, the tiny GRUs of evaluation/scores.py) a second thread buys
    almost nothing, and on a busy shared machine OpenMP spin-waiting made threaded
    runs 5 to 10 times slower than one thread.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
