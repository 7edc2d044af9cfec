"""Checkpoint folders: everything needed to sample again, and to resume training.

Layout of ``SAVE_DIR/<run>/step-NNNNNN/``::

    unet/                 diffusers save_pretrained of the EMA weights (safetensors)
    scheduler/            the training noise schedule (save_pretrained)
    transform.json        the scalogram transform, fitted scales included
    normalizer.json       the returns normalizer
    settings.json         the resolved settings of the run
    real_returns.npy      the training split's log returns (for plots and metrics)
    conditioning.json     conditional models only: what the labels mean (data/labels.py)
    joint.json            joint models only: the series, their normalizers and last prices
    untrained_reference.json  optional: realism figures of the model at its initial weights
                          (evaluation/summary.py), printed by generate.py beside the trained ones
    train_state/          raw weights and EMA (safetensors), optimizer state, counters
    checkpoint.json       written last: format version and step

A checkpoint is written under a temporary name and renamed into place, so a
kill at any moment leaves either the previous checkpoint or the new one, never
half of one. Nothing is unpickled: weights are safetensors, and the optimizer
state is read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diffusers import DDPMScheduler, UNet2DModel
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from utils.errors import ScalodiffError

FORMAT_VERSION = 1
MARKER = "checkpoint.json"
REQUIRED = (
    "unet/config.json",
    "unet/diffusion_pytorch_model.safetensors",
    "scheduler/scheduler_config.json",
    "transform.json",
    "normalizer.json",
    "settings.json",
    "real_returns.npy",
)
TRAIN_STATE = (
    "train_state/model.safetensors",
    "train_state/ema.safetensors",
    "train_state/optimizer.pt",
    "train_state/counters.json",
)
# What reading a damaged file raises (JSONDecodeError and UnicodeDecodeError are ValueErrors).
_DAMAGED = (OSError, ValueError, RuntimeError, KeyError, SafetensorError, pickle.UnpicklingError)
MAX_REAL_RETURNS = 500_000  # keep checkpoints small on minute data
UNTRAINED_REFERENCE = "untrained_reference.json"


def step_dir_name(step: int) -> str:
    return f"step-{step:06d}"


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    path.write_text(json.dumps(payload, indent=2, default=_json_default))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, tuple | np.ndarray):
        return list(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _fsync_dir(path: Path) -> None:
    """Flush a folder's entries (names created or renamed in it) to disk."""
    if os.name != "posix":
        return  # folders cannot be opened for fsync on Windows; NTFS journals renames
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP):
            raise  # some file systems cannot fsync a folder; that is not an error
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    """Flush every file under ``root``, then the folders that name them."""
    for folder, _subdirs, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(folder, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(folder))


def save_checkpoint(
    run_dir: Path,
    step: int,
    ema_unet: UNet2DModel,
    noise_scheduler: DDPMScheduler,
    transform_json: dict[str, Any],
    normalizer_json: dict[str, Any],
    settings: dict[str, Any],
    real_returns: np.ndarray,
    train_state: dict[str, Any],
    keep: int = 2,
    extra_json: dict[str, dict[str, Any]] | None = None,
) -> Path:
    """Write one checkpoint atomically and prune older ones; return its folder.

    ``train_state`` holds ``model`` (a state dict of the raw weights), ``ema``
    (a list of tensors), ``optimizer`` (a state dict) and ``counters``
    (JSON-serialisable). ``extra_json`` maps names to more JSON
    files written inside the same atomic folder (``{"conditioning": {...}}``).
    """
    final = run_dir / step_dir_name(step)
    tmp = run_dir / f".{final.name}.tmp"
    try:
        # Leftovers of a write or a pruning that a kill interrupted (one writer per run).
        for stale in run_dir.glob(".step-*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp.mkdir(parents=True)
        ema_unet.save_pretrained(tmp / "unet", safe_serialization=True)
        noise_scheduler.save_pretrained(tmp / "scheduler")
        _write_json(tmp / "transform.json", transform_json)
        _write_json(tmp / "normalizer.json", normalizer_json)
        _write_json(tmp / "settings.json", settings)
        for name, payload in (extra_json or {}).items():
            _write_json(tmp / f"{name}.json", payload)
        np.save(tmp / "real_returns.npy", np.asarray(real_returns[-MAX_REAL_RETURNS:], np.float64))
        state_dir = tmp / "train_state"
        state_dir.mkdir()
        save_file(
            {k: v.contiguous() for k, v in train_state["model"].items()},
            state_dir / "model.safetensors",
        )
        save_file(
            {f"{i}": t.contiguous() for i, t in enumerate(train_state["ema"])},
            state_dir / "ema.safetensors",
        )
        torch.save({"optimizer": train_state["optimizer"]}, state_dir / "optimizer.pt")
        _write_json(state_dir / "counters.json", train_state["counters"])
        _write_json(tmp / MARKER, {"format_version": FORMAT_VERSION, "step": step})
        # On disk before the rename publishes it: after a power cut the marker must not
        # name files whose data never left the page cache.
        _fsync_tree(tmp)
        if final.exists():
            # The same step saved again (e.g. on Ctrl-C): move the old one aside whole.
            os.replace(final, run_dir / f".{final.name}.old")
        os.replace(tmp, final)
        _fsync_dir(run_dir)  # the rename itself
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise ScalodiffError(
                f"out of disk space while writing a checkpoint to {run_dir}; free space or set "
                "SAVE_DIR (--save-dir) to a disk with room. The previous checkpoint is intact"
            ) from exc
        raise
    for old in list_checkpoints(run_dir)[:-keep]:
        # Rename first: a kill during the deletion must not leave a marked but partial checkpoint.
        trash = run_dir / f".{old.name}.old"
        try:
            os.replace(old, trash)
        except OSError:
            continue  # pruning is housekeeping: never fail after a good save
        shutil.rmtree(trash, ignore_errors=True)
    shutil.rmtree(run_dir / f".{final.name}.old", ignore_errors=True)
    return final


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints of one run, oldest first."""
    if not run_dir.is_dir():
        return []
    found = [p for p in run_dir.glob("step-*") if (p / MARKER).is_file()]
    return sorted(found, key=lambda p: p.name)


def find_latest(save_dir: str | os.PathLike) -> Path:
    """The newest complete checkpoint of any run under ``save_dir``."""
    save_dir = Path(save_dir)
    found = [c for run in save_dir.glob("*") if run.is_dir() for c in list_checkpoints(run)]
    if not found:
        raise ScalodiffError(
            f"no checkpoint under {save_dir}/; train one first with `python train.py`, "
            "or point --checkpoint at a checkpoint folder"
        )
    return max(found, key=lambda p: (p / MARKER).stat().st_mtime_ns)


def resolve_checkpoint(path: str | os.PathLike | None, save_dir: str | os.PathLike) -> Path:
    """A step folder from ``path`` (a step folder; a run folder: its newest; a folder of runs
    that holds exactly one: that run's newest), else the latest under ``save_dir``."""
    if path is None:
        return find_latest(save_dir)
    path = Path(path)
    if not path.exists():
        raise ScalodiffError(f"--checkpoint {path}: no such folder")
    if (path / MARKER).is_file():
        return path
    steps = list_checkpoints(path)
    if steps:
        return steps[-1]
    runs = sorted(r for r in path.iterdir() if r.is_dir() and list_checkpoints(r))
    if len(runs) == 1:
        return list_checkpoints(runs[0])[-1]
    if runs:
        names = ", ".join(r.name for r in runs[:5]) + (", ..." if len(runs) > 5 else "")
        raise ScalodiffError(
            f"--checkpoint {path} holds {len(runs)} runs ({names}); name one: --checkpoint {runs[-1]}"
        )
    raise ScalodiffError(
        f"--checkpoint {path}: not a checkpoint folder (no {MARKER}) and holds no step-* checkpoints"
    )


def validate(step_dir: Path) -> dict[str, Any]:
    """Check the folder is complete and of a format we read; return its marker."""
    marker = step_dir / MARKER
    if not marker.is_file():
        raise ScalodiffError(f"{step_dir}: incomplete checkpoint ({MARKER} is missing)")
    info = read_json(step_dir, MARKER)
    if info.get("format_version") != FORMAT_VERSION:
        raise ScalodiffError(
            f"{step_dir}: checkpoint format {info.get('format_version')!r}, this code reads "
            f"{FORMAT_VERSION}; use the version of scalodiff that wrote it or retrain"
        )
    missing = [f for f in REQUIRED if not (step_dir / f).is_file()]
    if missing:
        raise ScalodiffError(f"{step_dir}: checkpoint is missing {', '.join(missing)}")
    return info


def _damaged(step_dir: Path, what: str, exc: BaseException) -> ScalodiffError:
    detail = " ".join(str(exc).split())[:300]  # one line, whatever the library wrote
    return ScalodiffError(
        f"{step_dir}: cannot read {what} ({type(exc).__name__}: {detail}); the checkpoint is "
        "damaged. Use another checkpoint of the run (an earlier step-* folder) or retrain"
    )


def read_json(step_dir: Path, name: str) -> dict[str, Any]:
    """A JSON object from a checkpoint folder; a damaged file is a :class:`ScalodiffError`."""
    try:
        payload = json.loads((step_dir / name).read_text())
    except _DAMAGED as exc:
        raise _damaged(step_dir, name, exc) from exc
    if not isinstance(payload, dict):
        found = type(payload).__name__
        raise _damaged(step_dir, name, ValueError(f"expected a JSON object, got {found}"))
    return payload


def load_for_sampling(step_dir: Path) -> dict[str, Any]:
    """Everything generate.py needs: EMA UNet, scheduler config, transform, normalizer, settings, real returns."""
    info = validate(step_dir)
    try:
        unet = UNet2DModel.from_pretrained(step_dir / "unet", use_safetensors=True)
        scheduler_config = DDPMScheduler.load_config(step_dir / "scheduler")
        real_returns = np.load(step_dir / "real_returns.npy", allow_pickle=False)
    except _DAMAGED as exc:
        raise _damaged(step_dir, "the model files", exc) from exc
    return {
        "unet": unet.eval(),
        "scheduler_config": scheduler_config,
        "transform": read_json(step_dir, "transform.json"),
        "normalizer": read_json(step_dir, "normalizer.json"),
        "settings": read_json(step_dir, "settings.json"),
        "real_returns": real_returns,
        "step": info.get("step"),
        # Optional: present for conditional models only.
        "conditioning": (
            read_json(step_dir, "conditioning.json")
            if (step_dir / "conditioning.json").is_file()
            else None
        ),
        "untrained_reference": read_untrained_reference(step_dir),
        # Optional: present for joint models only.
        "joint": (
            read_json(step_dir, "joint.json") if (step_dir / "joint.json").is_file() else None
        ),
    }


def write_json_atomic(step_dir: Path, name: str, payload: dict[str, Any]) -> Path:
    """Write (or replace) ``name`` in a finished checkpoint, atomically.

    For what is fitted after the checkpoint was saved (it needs the saved model):
    the file is written under a temporary name and renamed, so that a reader sees
    the old state or the whole new file.
    """
    target = step_dir / name
    tmp = step_dir / f".{name}.tmp"
    _write_json(tmp, payload)
    os.replace(tmp, target)
    return target


def write_untrained_reference(step_dir: Path, payload: dict[str, Any]) -> Path:
    """Write the untrained model's figures (``untrained_reference.json``) into a checkpoint."""
    return write_json_atomic(step_dir, UNTRAINED_REFERENCE, payload)


def read_untrained_reference(step_dir: Path) -> dict[str, Any] | None:
    """The untrained model's figures, or None for checkpoints written without them."""
    if not (step_dir / UNTRAINED_REFERENCE).is_file():
        return None
    return read_json(step_dir, UNTRAINED_REFERENCE)


def load_resume_state(step_dir: Path) -> dict[str, Any]:
    """What a resumed run restores: ``train_state`` (:func:`load_train_state`) and the fitted
    ``normalizer``, ``transform`` and, for conditional runs, ``conditioning`` records."""
    state = {"train_state": load_train_state(step_dir)}
    for name in ("normalizer", "transform"):
        state[name] = read_json(step_dir, f"{name}.json")
    for name in ("conditioning", "joint"):
        if (step_dir / f"{name}.json").is_file():
            state[name] = read_json(step_dir, f"{name}.json")
    return state


def load_train_state(step_dir: Path) -> dict[str, Any]:
    """The resumable state written by :func:`save_checkpoint` (no pickle)."""
    validate(step_dir)
    missing = [f for f in TRAIN_STATE if not (step_dir / f).is_file()]
    if missing:
        raise ScalodiffError(
            f"{step_dir}: cannot resume, the checkpoint is missing {', '.join(missing)}; "
            "resume from an earlier step-* folder, or sample from this one with generate.py"
        )
    state_dir = step_dir / "train_state"
    try:
        ema = load_file(state_dir / "ema.safetensors")
        opt = torch.load(state_dir / "optimizer.pt", weights_only=True, map_location="cpu")
        model = load_file(state_dir / "model.safetensors")
        ema_list = [ema[str(i)] for i in range(len(ema))]
        # Checkpoints written before the learning rate was computed from the step alone also
        # hold an empty "lr_scheduler" entry; it is ignored.
        optimizer = opt["optimizer"]
    except _DAMAGED as exc:
        raise _damaged(step_dir, "the training state", exc) from exc
    return {
        "model": model,
        "ema": ema_list,
        "optimizer": optimizer,
        "counters": read_json(step_dir, "train_state/counters.json"),
    }
