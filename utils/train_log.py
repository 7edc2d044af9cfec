"""What a training run reports as it goes: a CSV row per step and a progress bar.

The CSV (``<run>/train_log.csv``) is appended to, so a resumed run continues
the same file. The bar counts percent of whichever limit binds first (steps or
minutes), so its remaining-time estimate is right for a time-limited run too.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

COLUMNS = ("step", "epoch", "loss", "lr", "samples_per_s", "elapsed_s")


REPORT_EVERY = 10.0  # percent of the budget between lines when no progress bar is shown


class TrainingLog:
    """The log file and progress bar of one process; a no-op where ``enabled`` is False.

    Parameters
    ----------
    path : Path
        The CSV file; the header is written when the file is new.
    enabled : bool
        Only the main process writes (the others get a silent log).
    limit : str
        The stopping rule, for the bar's title.
    done_percent : float
        Where the bar starts (a resumed run is partly done).
    progress : bool
        Draw the bar (never when stderr is not a terminal: a log file gets no redraws).
    """

    def __init__(
        self, path: Path, enabled: bool, limit: str, done_percent: float, progress: bool = True
    ) -> None:
        self.enabled = enabled
        self.smooth_loss: float | None = None
        self.file = None
        if enabled:
            new = not path.exists()
            self.file = open(path, "a", newline="")  # noqa: SIM115 (closed in close())
            self.writer = csv.writer(self.file)
            if new:
                self.writer.writerow(COLUMNS)
        self.bar = tqdm(
            total=100.0,
            initial=0.0,
            disable=not (enabled and progress and sys.stderr.isatty()),
            unit="%",
            desc=f"train (stops at {limit})",
            dynamic_ncols=True,
            bar_format="{l_bar}{bar}| {n:.1f}% [{elapsed}<{remaining}{postfix}]",
        )
        self.bar.update(min(100.0, done_percent))
        # Without a bar (no terminal, or --no-progress) a line every REPORT_EVERY percent
        # still shows that a long run is alive and how fast it goes.
        self.next_report = (done_percent // REPORT_EVERY + 1) * REPORT_EVERY

    def record(self, counters: dict[str, Any], loss: float, lr: float, done_percent: float) -> None:
        """One finished optimizer step: move the bar, append the CSV row."""
        self.smooth_loss = (
            loss if self.smooth_loss is None else 0.95 * self.smooth_loss + 0.05 * loss
        )
        rate = counters["samples"] / max(counters["elapsed_s"], 1e-9)
        if not self.enabled:
            return
        self.bar.update(min(100.0, done_percent) - self.bar.n)
        self.bar.set_postfix(
            step=counters["step"],
            loss=f"{self.smooth_loss:.4f}",
            samples_s=f"{rate:.1f}",
            epoch=counters["epoch"],
        )
        if self.bar.disable and done_percent >= self.next_report:
            self.next_report = (done_percent // REPORT_EVERY + 1) * REPORT_EVERY
            print(
                f"step {counters['step']} ({min(100.0, done_percent):.0f}% of the budget): "
                f"loss {self.smooth_loss:.4f}, {rate:.1f} samples/s",
                flush=True,
            )
            self.flush()
        self.writer.writerow(
            [
                counters["step"],
                counters["epoch"],
                f"{loss:.6f}",
                f"{lr:.3e}",
                f"{rate:.2f}",
                f"{counters['elapsed_s']:.1f}",
            ]
        )

    def flush(self) -> None:
        """Put the rows written so far on disk (at each checkpoint)."""
        if self.file is not None:
            self.file.flush()

    def close(self) -> None:
        """Close the bar and the file."""
        self.bar.close()
        if self.file is not None:
            self.file.close()
            self.file = None
