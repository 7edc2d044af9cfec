"""The README stays true: its commands match CI, and every setting is documented."""

from __future__ import annotations

import re
from pathlib import Path

from utils.settings import SETTING_TYPES, config_defaults

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def bash_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)```", README, flags=re.S)


def test_first_two_commands_install_run_and_test() -> None:
    run, test = (b.strip() for b in bash_blocks()[:2])
    assert (
        run.startswith("pip install torch==2.13.0")
        and "python train.py && python generate.py" in run
    )
    assert test.startswith("pip install torch==2.13.0") and "pytest" in test
    ci = (ROOT / ".ci" / "run").read_text()
    assert test in ci, ".ci/run must run exactly the README's test command"


def test_every_setting_is_documented_in_config_and_readme() -> None:
    assert set(config_defaults()) == set(SETTING_TYPES)
    for name in SETTING_TYPES:
        assert f"`{name}`" in README, f"{name} missing from the README settings table"


def config_table_rows() -> list[str]:
    """The README settings table's rows as config.py says them: name, default, comment."""
    rows = []
    for line in (ROOT / "config.py").read_text().splitlines():
        m = re.match(r"([A-Z_]+) = (.*?)  # (.*)$", line)
        if m:
            name, value, comment = m.groups()
            rows.append(f"| `{name}` | `{value}` | {comment.replace('|', chr(92) + '|')} |")
    return rows


def test_readme_settings_table_matches_config() -> None:
    rows = config_table_rows()
    assert len(rows) == len(SETTING_TYPES)
    stale = [r.split(" | ")[0] for r in rows if r not in README]
    assert not stale, f"README settings table differs from config.py for {stale}"


def test_requirements_pin_torch() -> None:
    assert "torch==2.13.0" in (ROOT / "requirements.txt").read_text()
