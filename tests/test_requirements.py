"""Every package the code imports is installed by the README's commands.

A module imported only on a machine that happens to have it (scikit-learn for the
shape classifiers was one) breaks the README's first command on a fresh machine.
Each third-party import outside tests must come from a distribution named in
requirements.txt or one of their own requirements; the tests' imports may also
use requirements-dev.txt.
"""

from __future__ import annotations

import ast
import re
import sys
from importlib import metadata
from pathlib import Path

from tests.test_import_flow import ROOT, modules

CODE = modules()  # the repository's modules outside tests, by dotted name
TESTS = {f"tests.{p.stem}": p.read_text() for p in sorted((ROOT / "tests").glob("*.py"))}
# The repository's own names: every package and module name (tests import benchmark
# scripts by their bare name once that folder is on the path).
LOCAL = {part for name in (*CODE, *TESTS) for part in name.split(".")}


def _key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def listed(path: Path) -> set[str]:
    """Distribution names a requirements file names, following ``-r`` includes."""
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("-r"):
            names |= listed(path.parent / line[2:].strip())
        elif line:
            names.add(_key(re.split(r"[<>=!~\[; ]", line)[0]))
    return names


def with_their_requirements(names: set[str]) -> set[str]:
    """``names`` and every installed distribution they require, transitively."""
    seen, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for req in requires:
            if "extra ==" not in req:
                todo.append(_key(re.split(r"[<>=!~\[; (]", req)[0]))
    return seen


def third_party_imports(sources: dict[str, str]) -> dict[str, str]:
    """Top-level module -> first module (of ``sources``, dotted name -> text) that imports it,
    for modules outside the standard library and this repository (deferred imports count)."""
    found: dict[str, str] = {}
    for name, source in sources.items():
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                tops = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                tops = [node.module.split(".")[0]]
            else:
                continue
            for top in tops:
                if top not in sys.stdlib_module_names and top not in LOCAL:
                    found.setdefault(top, name)
    return found


def unlisted(sources: dict[str, str], requirements: Path) -> list[str]:
    """One line per imported module that no distribution of ``requirements`` provides."""
    allowed = with_their_requirements(listed(requirements))
    providers = metadata.packages_distributions()
    out = []
    for module, where in sorted(third_party_imports(sources).items()):
        dists = {_key(d) for d in providers.get(module, [])}
        if not dists & allowed:
            out.append(
                f"{module} (imported by {where}; from {sorted(dists) or 'nothing installed'})"
            )
    return out


def test_code_imports_only_what_requirements_install() -> None:
    missing = unlisted(CODE, ROOT / "requirements.txt")
    assert not missing, f"add to requirements.txt: {missing}"


def test_tests_import_only_what_dev_requirements_install() -> None:
    missing = unlisted(TESTS, ROOT / "requirements-dev.txt")
    assert not missing, f"add to requirements-dev.txt: {missing}"


def test_an_unlisted_import_is_found(tmp_path: Path) -> None:
    module = {"uses": "import numpy\n\ndef f():\n    from sklearn import svm\n"}
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("numpy==2.4.6\n")
    assert [line.split()[0] for line in unlisted(module, requirements)] == ["sklearn"]
    requirements.write_text("numpy==2.4.6\nscikit-learn==1.9.1\n")
    assert unlisted(module, requirements) == []
