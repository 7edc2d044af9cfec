"""Imports follow the data flow: no module reaches into a later stage.

The stages, from the bottom: config and utils; data; transforms; models;
evaluation; the scripts (train.py, generate.py, evaluate.py); benchmarks. A
module may import its own stage or an earlier one. On top of that the library
stages (data, transforms, models) take their settings as arguments and hand
their results back: they never load config.py (directly or through
utils.settings or utils.runs) and never read or write checkpoints
(utils.checkpoint), which store what the later stages made.

Every import counts, also one inside a function: a deferred import is still a
dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGES = {
    "config": 0,
    "utils": 0,
    "data": 1,
    "transforms": 2,
    "models": 3,
    "evaluation": 4,
    "train": 5,
    "generate": 5,
    "evaluate": 5,
    "benchmarks": 6,
}
LIBRARY = ("data", "transforms", "models")
RUN_WIRING = ("config", "utils.settings", "utils.runs", "utils.checkpoint")


def modules() -> dict[str, str]:
    """The source of every module of the repository outside tests, by dotted name."""
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[0] not in STAGES and rel.stem not in STAGES:
            continue
        name = ".".join(rel.with_suffix("").parts).removesuffix(".__init__")
        found[name] = path.read_text()
    return found


def imported(source: str) -> list[tuple[int, str]]:
    """(line, dotted module name) of every import of this repository's modules in ``source``."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # "from utils import checkpoint" imports the module utils.checkpoint.
            out += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return [(line, name) for line, name in out if name.split(".")[0] in STAGES]


def _matches(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations(sources: dict[str, str]) -> list[str]:
    """One line per import that runs against the flow."""
    found = []
    for name, source in sources.items():
        stage = STAGES[name.split(".")[0]]
        for line, target in imported(source):
            where = f"{name} line {line} imports {target}"
            if STAGES[target.split(".")[0]] > stage:
                found.append(f"{where} (a later stage)")
            elif name.split(".")[0] in LIBRARY and any(_matches(target, w) for w in RUN_WIRING):
                found.append(f"{where} (settings and checkpoints are the scripts' wiring)")
    return found


def test_every_import_follows_the_data_flow() -> None:
    sources = modules()
    assert {"train", "utils.settings", "data.returns", "benchmarks.memory"} <= set(sources)
    assert violations(sources) == []


def test_the_check_finds_imports_against_the_flow() -> None:
    sources = {
        "utils.plotting": "from evaluation.metrics import acf\n",
        "data.conditional": "def f():\n    from utils import checkpoint\n",
        "evaluation.diffusion1d": "from train import lr_at\nfrom utils.settings import x\n",
        "models.diffusion": "import config\nfrom data.labels import Conditioning\n",
    }
    assert violations(sources) == [
        "utils.plotting line 1 imports evaluation.metrics.acf (a later stage)",
        "data.conditional line 2 imports utils.checkpoint "
        "(settings and checkpoints are the scripts' wiring)",
        "evaluation.diffusion1d line 1 imports train.lr_at (a later stage)",
        "models.diffusion line 1 imports config (settings and checkpoints are the scripts' wiring)",
    ]
