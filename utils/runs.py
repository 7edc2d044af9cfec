"""Run folders: a new one per training run, or an existing one to resume.

A new run never writes into a folder that already holds something, so two
runs are never silently mixed; ``--resume`` is the one way to continue one.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from accelerate.utils import broadcast_object_list

from utils import checkpoint as ckpt
from utils.errors import ScalodiffError
from utils.settings import data_source


def default_run_name(settings: dict[str, Any]) -> str:
    """``<date>-<time>-<data name>-<preset>``, e.g. ``20261124-153000-sp500-cpu``."""
    # The data actually read: the built-in stand-in when the shipped example file is missing.
    stem = Path(data_source(settings)[0]).stem or "data"
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{stem}-{settings['PRESET']}"


def new_run_dir(settings: dict[str, Any], name: str) -> Path:
    """Claim ``SAVE_DIR/name`` for a new run by creating it; return it.

    The claim is one ``mkdir`` that fails if the folder exists: of two runs
    started at the same moment under the same name, exactly one gets the
    folder. (Checking first and creating after would let both pass the check
    and write into one folder.) train.py claims it only once data and model
    are ready, so a start that fails leaves no empty folder behind.
    """
    run_dir = Path(settings["SAVE_DIR"]) / name
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        run_dir.mkdir()
    except FileExistsError:
        if run_dir.is_dir() and any(run_dir.iterdir()):
            raise ScalodiffError(
                f"run folder {run_dir} already holds a run; continue it with --resume {run_dir}, "
                "or pick another --run-name"
            ) from None
        raise ScalodiffError(
            f"run folder {run_dir} already exists (another run may have just started under "
            "this name); pick another --run-name, or delete it if it is an empty leftover"
        ) from None
    return run_dir


def resume_run_dir(
    target: str, settings: dict[str, Any], explicit: set[str], may_change: tuple[str, ...]
) -> tuple[Path, Path, dict[str, Any]]:
    """Find the checkpoint to resume; return (run folder, step folder, the run's settings).

    The run keeps the settings it was started with. Only the stopping settings in
    ``may_change`` may be given anew on the command line (to train longer);
    changing any other setting of a run is an error rather than a silent mix.
    """
    if target == "latest":
        if not any(ckpt.list_checkpoints(run) for run in Path(settings["SAVE_DIR"]).glob("*")):
            raise ScalodiffError(
                f"--resume: no checkpoint under {settings['SAVE_DIR']}/ to continue; start a run "
                "with `python train.py`, or give the run folder: --resume DIR"
            )
        step_dir = ckpt.find_latest(settings["SAVE_DIR"])
    else:
        path = Path(target)
        if not path.is_dir():
            raise ScalodiffError(
                f"--resume {path}: no such folder; give a run folder or a step-* folder in it"
            )
        steps = [path] if (path / ckpt.MARKER).is_file() else ckpt.list_checkpoints(path)
        if not steps:
            # A run killed before its first save leaves a folder with a log and nothing to load.
            raise ScalodiffError(
                f"--resume {path}: holds no complete checkpoint, so there is nothing to continue "
                "(a run saves every CHECKPOINT_EVERY steps and at the end). Delete the folder and "
                "start the run again"
            )
        step_dir = steps[-1]
    saved = ckpt.read_json(step_dir, "settings.json")
    resumed = dict(saved)
    # Runs saved before continuation existed were trained without it; the preset must not add it.
    resumed.setdefault("CONTEXT_FRACTIONS", ())
    for name in sorted(explicit):
        if name in may_change:
            resumed[name] = settings[name]
        elif name not in ("SAVE_DIR",) and _differs(saved.get(name), settings[name]):
            raise ScalodiffError(
                f"--resume continues {step_dir.parent} with its own settings; {name}={settings[name]!r} "
                f"differs from the run's {saved.get(name)!r}. Start a new run to change it"
            )
    return step_dir.parent, step_dir, resumed


def _differs(a: Any, b: Any) -> bool:
    # JSON turns tuples into lists; compare them as equal.
    def norm(v: Any) -> Any:
        return list(v) if isinstance(v, tuple | list) else v

    return norm(a) != norm(b)


def claim_run_dir(settings: dict[str, Any], name: str, is_main: bool) -> Path:
    """Create the new run's folder on the main process and give every process its path.

    Every process must agree on the folder: the main process names and creates it
    (the default name holds the time, which differs between processes) and passes
    its error on too, so that no process trains on alone after a failed claim.
    """
    problem = None
    if is_main:
        try:
            new_run_dir(settings, name)
        except ScalodiffError as exc:
            problem = str(exc)
    name, problem = broadcast_object_list([name, problem])
    if problem is not None:
        raise ScalodiffError(problem)
    return Path(settings["SAVE_DIR"]) / name


def check_same_data(step_dir: Path, saved_sha256: str | None, data: Any) -> None:
    """Refuse to resume a run on data other than it was trained on (``data.sha256`` differs).

    Runs saved before the hash was recorded (no ``saved_sha256``) are not checked.
    """
    if saved_sha256 is None or saved_sha256 == data.sha256:
        return
    raise ScalodiffError(
        f"--resume {step_dir.parent}: the data read now ({data.source}, sha256 "
        f"{data.sha256[:12]}) differ from the data the run was trained on (sha256 "
        f"{saved_sha256[:12]}); start a new run, or pass --allow-data-change to continue on them"
    )
