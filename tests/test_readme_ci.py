"""README's test command is exactly what CI runs; README gives one install+start command; the suite's schedule names real modules."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _commands(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip().startswith("pip install")]


def test_readme_has_exactly_the_two_fresh_machine_commands():
    commands = _commands((ROOT / "README.md").read_text())
    assert len(commands) == 2, commands
    assert commands[0].endswith("&& streamlit run app.py")
    assert commands[1].endswith("&& python -m pytest")
    assert all(c.startswith("pip install torch==2.13.0 && ") for c in commands)


def test_ci_runs_readme_test_command_verbatim():
    readme_test = _commands((ROOT / "README.md").read_text())[1]
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert readme_test in ci_lines


def test_the_schedule_names_test_modules_that_exist():
    """A renamed module left in the longest-first list would silently go out last again."""
    from tests.conftest import LONGEST_FIRST

    assert len(set(LONGEST_FIRST)) == len(LONGEST_FIRST)
    assert all((ROOT / module).is_file() and not module.startswith("tests/e2e/") for module in LONGEST_FIRST), LONGEST_FIRST
