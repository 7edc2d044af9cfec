"""Training faults: kills at any moment, a full disk, a run killed before its first save.

The kill test runs ``python train.py`` as a user would, with a tiny model that saves
a checkpoint every step, and SIGKILLs it at a random moment: while a checkpoint is
being written, just after one was completed, or after a random delay. After every
kill each checkpoint that ``list_checkpoints`` reports must load (for sampling and for
resuming); then ``--resume`` must finish the run, whose final model must load and run.
The default suite does this once; ``-m slow`` repeats it with several kills per run.
"""

from __future__ import annotations

import errno
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import generate
import train
from tests.conftest import tiny_settings
from tests.test_bad_input import EXIT_USER_ERROR, error_line
from utils import checkpoint as ckpt

ROOT = Path(__file__).resolve().parents[1]
MAX_STEPS = 10
WAIT_S = 600  # the most any one phase may take on a busy machine


# ------------------------------------------------------------------ helpers


def start_training(argv: list[str], log: Path) -> subprocess.Popen:
    """``python train.py ARGV`` from the repository root, output to ``log``."""
    with open(log, "a") as out:
        return subprocess.Popen(
            [sys.executable, "train.py", *argv],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )


def _tmp_dirs(run: Path) -> list[str]:
    """Hidden folders of checkpoints being written (or pruned) right now."""
    try:
        return [e.name for e in os.scandir(run) if e.name.startswith(".step-")]
    except FileNotFoundError:
        return []


def _wait(proc: subprocess.Popen, ready, what: str) -> bool:
    """Poll until ``ready()``; False if the process ended first."""
    deadline = time.monotonic() + WAIT_S
    while not ready():
        if proc.poll() is not None:
            return False
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.002)
    return True


def kill_at(proc: subprocess.Popen, run: Path, moment: str, rng: random.Random) -> str:
    """SIGKILL ``proc`` at ``moment``; return what the kill found (printed with the test).

    ``mid-write``: as soon as a checkpoint is being written, after one is complete.
    ``after-write``: as soon as a new complete checkpoint appears.
    ``random``: a random delay of up to 2 s after the first complete checkpoint.
    ``before-first``: once the run has started its log, before its first checkpoint.
    """
    done = {p.name for p in ckpt.list_checkpoints(run)}
    if moment == "before-first":
        alive = _wait(proc, lambda: (run / "train_log.csv").exists(), "the run to start")
    else:
        alive = _wait(proc, lambda: bool(ckpt.list_checkpoints(run)), "a first checkpoint")
        if alive and moment == "mid-write":
            alive = _wait(proc, lambda: bool(_tmp_dirs(run)), "a checkpoint write")
        elif alive and moment == "after-write":
            done = {p.name for p in ckpt.list_checkpoints(run)}
            alive = _wait(
                proc, lambda: {p.name for p in ckpt.list_checkpoints(run)} - done, "a save"
            )
        elif alive:
            time.sleep(rng.uniform(0.0, 2.0))
    proc.send_signal(signal.SIGKILL)
    status = proc.wait(timeout=WAIT_S)
    if status != -signal.SIGKILL:  # it finished first (a slow poll on a busy machine)
        assert status == 0, f"the run failed before the {moment} kill"
        return f"{moment}: the run finished before the kill"
    return f"{moment}: killed with {_tmp_dirs(run) or 'no'} partial checkpoint folder(s) on disk"


def check_listed_checkpoints_load(run: Path) -> list[Path]:
    """Every checkpoint the run lists loads for sampling and for resuming, at its own step."""
    steps = ckpt.list_checkpoints(run)
    for step_dir in steps:
        number = int(step_dir.name.removeprefix("step-"))
        assert ckpt.load_for_sampling(step_dir)["step"] == number, step_dir
        assert ckpt.load_train_state(step_dir)["counters"]["step"] == number, step_dir
    return steps


def check_finished(run: Path, log: Path) -> None:
    """The run reached MAX_STEPS, left no partial folders, and its final model samples."""
    steps = check_listed_checkpoints_load(run)
    assert steps[-1].name == ckpt.step_dir_name(MAX_STEPS), log.read_text()[-2000:]
    assert _tmp_dirs(run) == []
    loaded = ckpt.load_for_sampling(steps[-1])
    unet = loaded["unet"]
    x = torch.randn(2, unet.config.in_channels, *unet.config.sample_size)
    with torch.no_grad():
        out = unet(x, torch.tensor([3, 7])).sample
    assert out.shape == x.shape and torch.isfinite(out).all()


def kill_and_resume(tmp_path: Path, moments: list[str], seed: int) -> list[str]:
    """Start a run, kill it at each of ``moments`` (resuming in between), then finish it."""
    rng = random.Random(seed)
    save_dir, log = tmp_path / "runs", tmp_path / "train.log"
    run = save_dir / "r"
    flags = tiny_settings(save_dir, MAX_STEPS=MAX_STEPS, CHECKPOINT_EVERY=1, KEEP_CHECKPOINTS=2)
    proc = start_training([*flags, "--data", "sp500", "--run-name", "r"], log)
    report = []
    try:
        for moment in moments:
            report.append(kill_at(proc, run, moment, rng))
            steps = check_listed_checkpoints_load(run)
            assert steps, f"{report}: no checkpoint survived"
            proc = start_training(["--resume", str(run)], log)
        assert proc.wait(timeout=WAIT_S) == 0, log.read_text()[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    check_finished(run, log)
    return report


# ------------------------------------------------------------ kill, resume


def test_kill_during_a_checkpoint_write_then_resume(tmp_path: Path) -> None:
    report = kill_and_resume(tmp_path, ["mid-write"], seed=0)
    print(report)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(5))
def test_repeated_random_kills_then_resume(tmp_path: Path, seed: int) -> None:
    moments = ["mid-write", random.Random(seed).choice(["random", "after-write", "mid-write"])]
    report = kill_and_resume(tmp_path, moments, seed=seed)
    print(report)


@pytest.mark.slow
def test_kill_before_the_first_checkpoint_then_resume_says_so(tmp_path: Path) -> None:
    save_dir, log = tmp_path / "runs", tmp_path / "train.log"
    run = save_dir / "r"
    flags = tiny_settings(save_dir, MAX_STEPS=MAX_STEPS, CHECKPOINT_EVERY=MAX_STEPS)
    proc = start_training([*flags, "--data", "sp500", "--run-name", "r"], log)
    kill_at(proc, run, "before-first", random.Random(0))
    assert ckpt.list_checkpoints(run) == []
    resumed = subprocess.run(
        [sys.executable, "train.py", "--resume", str(run)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=WAIT_S,
    )
    assert resumed.returncode == EXIT_USER_ERROR
    line = error_line(resumed.stderr)
    assert str(run) in line and "no complete checkpoint" in line and "Delete the folder" in line


def test_resume_of_a_run_without_a_checkpoint_is_a_clear_error(tmp_path: Path, capsys) -> None:
    """What a kill before the first save leaves: a log and perhaps a partial folder."""
    run = tmp_path / "r"
    (run / ".step-000001.tmp" / "unet").mkdir(parents=True)
    (run / "train_log.csv").write_text(
        "step,epoch,loss,lr,samples_per_s,elapsed_s\n1,0,1.0,1e-3,5,1\n"
    )
    assert train.main(["--resume", str(run)]) == EXIT_USER_ERROR
    line = error_line(capsys.readouterr().err)
    assert line.startswith(f"error: --resume {run}: holds no complete checkpoint")
    assert "Delete the folder and start the run again" in line
    assert train.main(["--resume", str(tmp_path / "nope")]) == EXIT_USER_ERROR
    assert "no such folder" in error_line(capsys.readouterr().err)
    empty = tiny_settings(tmp_path / "empty")
    assert train.main([*empty, "--resume"]) == EXIT_USER_ERROR
    line = error_line(capsys.readouterr().err)
    assert "no checkpoint under" in line and "--resume DIR" in line and "--checkpoint" not in line


# ---------------------------------------------------------------- full disk


def _no_space(path: object) -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


def test_full_disk_while_checkpointing_keeps_the_previous_checkpoint(
    tmp_path: Path, tiny, capsys, monkeypatch
) -> None:
    real_save_file = ckpt.save_file
    calls = []

    def save_file(tensors, filename, *args, **kwargs):
        calls.append(filename)
        if len(calls) > 2:  # two files per checkpoint: the second checkpoint finds the disk full
            raise _no_space(filename)
        return real_save_file(tensors, filename, *args, **kwargs)

    monkeypatch.setattr(ckpt, "save_file", save_file)
    argv = [*tiny(MAX_STEPS=3, CHECKPOINT_EVERY=1), "--data", "sp500", "--run-name", "r"]
    assert train.main(argv) == EXIT_USER_ERROR
    run = tmp_path / "r"
    line = error_line(capsys.readouterr().err)
    assert line == (
        f"error: out of disk space while writing a checkpoint to {run}; free space or set "
        "SAVE_DIR (--save-dir) to a disk with room. The previous checkpoint is intact"
    )
    assert [p.name for p in check_listed_checkpoints_load(run)] == ["step-000001"]
    assert _tmp_dirs(run) == []  # the partial write was cleaned up

    # generate.py writing its paths to a full disk: one line as well, naming the file.
    out = tmp_path / "paths.csv"

    def write_paths(path, *args, **kwargs):
        raise _no_space(path)

    monkeypatch.setattr(generate, "write_paths", write_paths)
    argv = [*tiny(), "--checkpoint", str(run), "--out", str(out), "--no-plot"]
    assert generate.main(argv) == EXIT_USER_ERROR
    line = error_line(capsys.readouterr().err)
    assert line.startswith(f"error: out of disk space writing {out}") and "--out" in line


def test_full_disk_outside_a_checkpoint_is_one_line_too(
    tmp_path: Path, tiny, capsys, monkeypatch
) -> None:
    def full(*args, **kwargs):
        raise _no_space(tmp_path / "r")

    monkeypatch.setattr(train, "new_run_dir", full)
    assert train.main([*tiny(MAX_STEPS=1), "--data", "sp500", "--run-name", "r"]) == EXIT_USER_ERROR
    line = error_line(capsys.readouterr().err)
    assert (
        line.startswith(f"error: out of disk space writing {tmp_path / 'r'}") and "SAVE_DIR" in line
    )
