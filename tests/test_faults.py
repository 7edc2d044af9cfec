"""Training faults: kills at any moment, a full disk, a run killed before its first save.

The kill test runs ``python train.py`` as a user would, with a tiny model that saves
a checkpoint every step (and prunes all but the newest two), and SIGKILLs it: while a
checkpoint is being written, just after one was completed, after a random delay, or
during start-up. After every kill each checkpoint that ``list_checkpoints`` reports
must load (for sampling and for resuming); then ``--resume`` must finish the run, whose
final model must load and run. The default suite kills once, mid-write; ``-m slow``
runs five runs of three kills each.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from diffusers import DDPMScheduler, UNet2DModel

import generate
import train
from tests.conftest import tiny_settings
from tests.test_bad_input import EXIT_USER_ERROR, error_line
from utils import checkpoint as ckpt
from utils import runs
from utils.errors import ScalodiffError
from utils.paths_io import write_paths
from utils.runs import new_run_dir

ROOT = Path(__file__).resolve().parents[1]
MAX_STEPS = 8  # the default suite's run; the slow runs are longer
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


def _saved(run: Path) -> set[tuple[str, int]]:
    """The complete checkpoints of a run, each with the time its marker was written."""
    found = set()
    for step_dir in ckpt.list_checkpoints(run):
        with contextlib.suppress(FileNotFoundError):  # pruned between listing and stat
            found.add((step_dir.name, (step_dir / ckpt.MARKER).stat().st_mtime_ns))
    return found


def kill_at(proc: subprocess.Popen, run: Path, moment: str, rng: random.Random) -> str:
    """SIGKILL ``proc`` at ``moment``; return what the kill found (printed with the test).

    Moments count from this process's first own save (a resumed process spends seconds
    on imports first, and earlier processes' checkpoints and leftovers are on disk):

    ``mid-write``: as soon as its next checkpoint is being written.
    ``after-write``: as soon as its next checkpoint is complete.
    ``random``: after a random delay of up to 1.5 s.
    ``startup``: a random delay of up to 3 s after the start (imports, data, model).
    ``before-first``: once a new run has started its log, before its first checkpoint.
    """
    if moment == "startup":
        time.sleep(rng.uniform(0.0, 3.0))
    elif moment == "before-first":
        alive = _wait(proc, lambda: (run / "train_log.csv").exists(), "the run to start")
    else:
        before = _saved(run)
        alive = _wait(proc, lambda: _saved(run) - before, "a first save")
        if alive and moment == "mid-write":
            alive = _wait(proc, lambda: bool(_tmp_dirs(run)), "a checkpoint write")
        elif alive and moment == "after-write":
            before = _saved(run)
            alive = _wait(proc, lambda: _saved(run) - before, "a second save")
        elif alive:
            time.sleep(rng.uniform(0.0, 1.5))
    proc.send_signal(signal.SIGKILL)
    status = proc.wait(timeout=WAIT_S)
    if status != -signal.SIGKILL:  # it finished first (a slow poll on a busy machine)
        assert status == 0, f"the run failed before the {moment} kill"
        return f"{moment}: the run finished before the kill"
    newest = ckpt.list_checkpoints(run)[-1].name if ckpt.list_checkpoints(run) else "none"
    return f"{moment}: killed with newest {newest} and partial folders {_tmp_dirs(run)}"


def check_listed_checkpoints_load(run: Path) -> list[Path]:
    """Every checkpoint the run lists loads for sampling and for resuming, at its own step."""
    steps = ckpt.list_checkpoints(run)
    for step_dir in steps:
        number = int(step_dir.name.removeprefix("step-"))
        assert ckpt.load_for_sampling(step_dir)["step"] == number, step_dir
        assert ckpt.load_train_state(step_dir)["counters"]["step"] == number, step_dir
    return steps


def check_finished(run: Path, log: Path, max_steps: int) -> None:
    """The run reached ``max_steps``, left no partial folders, and its final model samples."""
    steps = check_listed_checkpoints_load(run)
    assert steps[-1].name == ckpt.step_dir_name(max_steps), log.read_text()[-2000:]
    assert _tmp_dirs(run) == []
    loaded = ckpt.load_for_sampling(steps[-1])
    unet = loaded["unet"]
    x = torch.randn(2, unet.config.in_channels, *unet.config.sample_size)
    with torch.no_grad():
        out = unet(x, torch.tensor([3, 7])).sample
    # A context model takes its history as extra input channels; it outputs the image alone.
    assert out.shape == (2, unet.config.out_channels, *x.shape[2:])
    assert torch.isfinite(out).all()


def kill_and_resume(tmp_path: Path, moments: list[str], seed: int, max_steps: int) -> list[str]:
    """Start a run, kill it at each of ``moments`` (resuming in between), then finish it."""
    rng = random.Random(seed)
    save_dir, log = tmp_path / "runs", tmp_path / "train.log"
    run = save_dir / "r"
    flags = tiny_settings(save_dir, MAX_STEPS=max_steps, CHECKPOINT_EVERY=1, KEEP_CHECKPOINTS=2)
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
    check_finished(run, log, max_steps)
    return report


# ------------------------------------------------------------ kill, resume


def test_kill_during_a_checkpoint_write_then_resume(tmp_path: Path) -> None:
    report = kill_and_resume(tmp_path, ["mid-write"], seed=0, max_steps=MAX_STEPS)
    print(report)


# Three kills per run. The first lands mid-write, so that every run has something to resume;
# together the runs kill during writes, just after them, at random and during start-up.
KILL_PLANS = [
    ["mid-write", "after-write", "random"],
    ["mid-write", "random", "startup"],
    ["mid-write", "startup", "mid-write"],
    ["mid-write", "after-write", "after-write"],
    ["mid-write", "random", "random"],
]


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(len(KILL_PLANS)))
def test_repeated_random_kills_then_resume(tmp_path: Path, seed: int) -> None:
    report = kill_and_resume(tmp_path, KILL_PLANS[seed], seed=seed, max_steps=20)
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


class _Killed(BaseException):
    """Stands in for SIGKILL inside one process: nothing after it runs."""


def _save_tiny_checkpoint(run: Path, step: int, keep: int) -> Path:
    """A real checkpoint of a tiny UNet, written by ``save_checkpoint``, without training."""
    torch.manual_seed(step)
    unet = UNet2DModel(
        sample_size=(8, 8),
        in_channels=1,
        out_channels=1,
        block_out_channels=(8, 8),
        layers_per_block=1,
        norm_num_groups=8,
        down_block_types=("DownBlock2D",) * 2,
        up_block_types=("UpBlock2D",) * 2,
    )
    state = {
        "model": unet.state_dict(),
        "ema": [p.detach().clone() for p in unet.parameters()],
        "optimizer": {},
        "counters": {"step": step},
    }
    noise = DDPMScheduler(num_train_timesteps=10)
    return ckpt.save_checkpoint(run, step, unet, noise, {}, {}, {}, np.zeros(4), state, keep=keep)


def test_a_kill_while_pruning_leaves_no_listed_partial_checkpoint(
    tmp_path: Path, monkeypatch
) -> None:
    """Deleting an old checkpoint takes time; a kill halfway must not leave it listed."""
    run = tmp_path / "r"
    _save_tiny_checkpoint(run, 1, keep=1)
    real_rmtree = shutil.rmtree

    def rmtree_killed_halfway(path, *args, **kwargs):
        path = Path(path)
        if path.name.endswith(("step-000001", "step-000001.old")):
            (path / "unet" / "diffusion_pytorch_model.safetensors").unlink()  # partly deleted
            raise _Killed
        return real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(shutil, "rmtree", rmtree_killed_halfway)
    with pytest.raises(_Killed):
        _save_tiny_checkpoint(run, 2, keep=1)  # saves step 2, then prunes step 1
    monkeypatch.setattr(shutil, "rmtree", real_rmtree)
    assert [p.name for p in check_listed_checkpoints_load(run)] == ["step-000002"]
    _save_tiny_checkpoint(run, 3, keep=1)  # the next save clears what the kill left
    assert [p.name for p in run.iterdir()] == ["step-000003"]


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

    monkeypatch.setattr(runs, "new_run_dir", full)
    assert train.main([*tiny(MAX_STEPS=1), "--data", "sp500", "--run-name", "r"]) == EXIT_USER_ERROR
    line = error_line(capsys.readouterr().err)
    assert (
        line.startswith(f"error: out of disk space writing {tmp_path / 'r'}") and "SAVE_DIR" in line
    )


# ------------------------------------------- run folders, leftovers, durability


def test_two_runs_started_at_once_under_one_name_get_one_folder(tmp_path: Path) -> None:
    """The claim of a run folder is atomic: exactly one of two simultaneous runs wins."""
    settings = {"SAVE_DIR": str(tmp_path / "runs")}
    # The race's window: the first run made the folder and has written nothing yet.
    new_run_dir(settings, "r")
    with pytest.raises(ScalodiffError, match="already exists .*pick another --run-name"):
        new_run_dir(settings, "r")

    racers = 8
    barrier = threading.Barrier(racers)
    outcomes: list[str] = []

    def claim() -> None:
        barrier.wait()
        try:
            new_run_dir(settings, "s")
            outcomes.append("claimed")
        except ScalodiffError:
            outcomes.append("refused")

    threads = [threading.Thread(target=claim) for _ in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["claimed"] + ["refused"] * (racers - 1)


@pytest.mark.parametrize("problem", ["bad data file", "fewer windows than a batch"])
def test_a_failed_start_leaves_no_run_folder(tmp_path: Path, tiny, capsys, problem) -> None:
    if problem == "bad data file":
        data = tmp_path / "prices.csv"
        data.write_text("Date,Close\n2020-01-01,10\n2020-01-02,ten\n")
        argv = [*tiny(MAX_STEPS=1), "--data", str(data), "--run-name", "r"]
    else:
        argv = [*tiny(MAX_STEPS=1, BATCH_SIZE=100_000), "--data", "sp500", "--run-name", "r"]
    assert train.main(argv) == EXIT_USER_ERROR
    assert "error:" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
    # The name is still free: a run that can start takes it.
    if problem == "bad data file":
        assert train.main([*tiny(MAX_STEPS=1), "--data", "sp500", "--run-name", "r"]) == 0
        assert ckpt.list_checkpoints(tmp_path / "r")


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".npy"])
def test_a_failed_paths_write_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch, suffix: str
) -> None:
    out = tmp_path / f"paths{suffix}"

    def full_disk(self_or_file, target, *args, **kwargs):
        Path(target if isinstance(target, str | os.PathLike) else target.name).write_bytes(b"half")
        raise _no_space(target)

    if suffix == ".npy":
        monkeypatch.setattr(np, "save", lambda fh, arr: full_disk(None, fh))
    else:
        method = "to_csv" if suffix == ".csv" else "to_parquet"
        monkeypatch.setattr(pd.DataFrame, method, full_disk)
    with pytest.raises(OSError, match="No space"):
        write_paths(out, np.zeros((2, 3)))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="names open files via /proc")
def test_a_checkpoint_is_on_disk_before_its_rename_publishes_it(
    tmp_path: Path, monkeypatch
) -> None:
    """Every file and folder is fsynced before the rename, and the run folder after it."""
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst) -> None:
        events.append(("rename", f"{os.fspath(src)} -> {os.fspath(dst)}"))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    run = tmp_path / "r"
    run.mkdir()
    final = _save_tiny_checkpoint(run, 1, keep=2)
    tmp = run / ".step-000001.tmp"
    publish = events.index(("rename", f"{tmp} -> {final}"))
    synced_before = {path for kind, path in events[:publish] if kind == "fsync"}
    written = {str(tmp / p.relative_to(final)) for p in final.rglob("*")} | {str(tmp)}
    assert written <= synced_before, sorted(written - synced_before)
    assert ("fsync", str(run)) in events[publish:]
