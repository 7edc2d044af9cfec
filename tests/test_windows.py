"""Windows: count, content, views instead of copies, and the length check."""

from __future__ import annotations

import tracemalloc
import warnings

import numpy as np
import pytest
import torch

from data.batches import BatchOrder
from data.windows import check_length, n_windows, windows_view
from transforms.volatility import VolatilityScalogram
from transforms.wavelet import Scalogram
from utils.errors import ScalodiffError


@pytest.mark.parametrize(("n", "size", "stride"), [(10, 4, 1), (10, 4, 3), (10, 10, 5), (11, 3, 4)])
def test_count_and_content(n, size, stride):
    series = np.arange(n, dtype=np.float32)
    view = windows_view(series, size, stride)
    expected = [series[s : s + size] for s in range(0, n - size + 1, stride)]
    assert view.shape == (len(expected), size) == (n_windows(n, size, stride), size)
    np.testing.assert_array_equal(view, np.array(expected))


def test_view_shares_memory_and_is_read_only():
    series = np.random.default_rng(0).normal(size=1000).astype(np.float32)
    view = windows_view(series, 64, 2)
    assert np.shares_memory(view, series)
    assert not view.flags.writeable


def test_a_batch_copies_only_its_rows():
    series = np.arange(100_000, dtype=np.float32)
    batch = windows_view(series, 16, 1)[np.array([5, 9])]  # as train.py reads a batch
    assert batch.nbytes == 2 * 16 * 4 and not np.shares_memory(batch, series)
    batch += 1.0
    assert series[5] == 5.0  # writing to a batch never touches the series


def test_memory_grows_with_series_not_with_windows():
    series = np.zeros(10_000_000, dtype=np.float32)  # 40 MB; as windows x 256 it would be 10 GB
    tracemalloc.start()
    try:
        view = windows_view(series, window_size=256, stride=1)
        _ = view[np.array([0, 123_456, len(view) - 1])]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(view) == 10_000_000 - 255
    assert peak < 1_000_000, f"the view and a batch allocated {peak / 1e6:.1f} MB"


@pytest.mark.parametrize("volatility_row", [False, True])
def test_fitting_a_transform_on_the_view_copies_one_batch_at_a_time(volatility_row: bool):
    """train.py fits the transform on a read-only view of (up to 65,536) windows.

    Neither a float64 copy of all of them is made (the volatility row's fit made
    two), nor is the view handed to torch, which warns about non-writable arrays.
    """
    series = np.random.default_rng(0).standard_normal(20_000).astype(np.float32)
    view = windows_view(series, 64)[::2]  # ~10,000 windows: 5 MB as float64
    base = Scalogram(window_size=64, n_scales=15)
    transform = VolatilityScalogram(base) if volatility_row else base
    tracemalloc.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            transform.fit(view, batch_size=256)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < view.size * 8 / 4, f"fitting allocated {peak / 1e6:.1f} MB"
    images = transform.forward(torch.from_numpy(view[:4].copy()))
    torch.testing.assert_close(transform.inverse(images), torch.from_numpy(view[:4].copy()))


def test_batch_order_visits_every_window_once_per_epoch_split_between_processes():
    counters = [{"epoch": 0, "batch_in_epoch": 0} for _ in range(2)]
    ranks = [BatchOrder(20, 4, 5, seed=1, rank=r, world=2) for r in range(2)]
    for epoch in (0, 1):
        seen = []
        for _ in range(5):
            for order, c in zip(ranks, counters, strict=True):
                rows, _b = order.next(c)
                assert len(rows) == 2 and list(rows) == sorted(rows)
                seen += rows.tolist()
        assert sorted(seen) == list(range(20)) and counters[0]["epoch"] == epoch
    again = BatchOrder(20, 4, 5, seed=1)
    assert again.next({"epoch": 0, "batch_in_epoch": 0})[0].tolist() != list(range(4))


def test_bad_inputs():
    with pytest.raises(ScalodiffError, match=r"WINDOW_SIZE=0"):
        windows_view(np.zeros(10), 0)
    with pytest.raises(ScalodiffError, match=r"STRIDE=1\.5"):
        windows_view(np.zeros(10), 4, 1.5)
    with pytest.raises(ScalodiffError, match=r"shorter than WINDOW_SIZE=11"):
        windows_view(np.zeros(10), 11)
    with pytest.raises(ScalodiffError, match="1-D"):
        windows_view(np.zeros((3, 4)), 2)


def test_check_length_says_how_many_rows_are_needed():
    check_length(256, 256, "spx.csv")  # exactly one window is enough
    with pytest.raises(ScalodiffError) as error:
        check_length(99, 256, "spx.csv")
    message = str(error.value)
    assert "spx.csv" in message and "99 returns" in message and "100 prices" in message
    assert "WINDOW_SIZE=256" in message and "at least 257 prices" in message
