"""A missing tool skips its tests locally and fails them under CI=true (never a silent
skip in CI); both ways, the ``requires_tool`` marker and the helper."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

INNER = '''
import pytest
from tests.tools import require_tool


@pytest.mark.requires_tool("mot-no-such-tool", "mot-nor-this-one")
def test_marked() -> None:
    pass


def test_helper() -> None:
    require_tool("mot-no-such-tool")


@pytest.mark.requires_tool("mot-no-such-tool", "sh")
def test_one_of_them_is_there() -> None:
    pass
'''
CONFTEST = "from tests.tools import pytest_runtest_setup  # noqa: F401\n"


@pytest.mark.parametrize(("ci", "missing"), [(None, "skipped"), ("true", "errors"),
                                             ("false", "skipped")])
def test_a_missing_tool_skips_locally_and_fails_in_ci(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str | None, missing: str
) -> None:
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_inner=INNER)
    result = pytester.runpytest(
        "-ra", "-p", "no:cacheprovider", "-o", "markers=requires_tool(*names): test",
        "-o", "asyncio_default_fixture_loop_scope=function")
    outcomes = result.parseoutcomes()
    if missing == "skipped":
        assert outcomes == {"passed": 1, "skipped": 2}, result.stdout.str()
        result.stdout.fnmatch_lines(["*mot-no-such-tool or mot-nor-this-one not installed*"])
    else:  # the marker fails in setup, the helper in the test's body
        assert outcomes == {"passed": 1, "errors": 1, "failed": 1}, result.stdout.str()
        result.stdout.fnmatch_lines(["*CI=true: a missing tool fails the run*"])


def test_system_deps_checks_every_tool_the_tests_require() -> None:
    """deploy/local/system-deps.sh looks for each program a test requires (the broker's
    java and mvn included), so `make system-deps` installs what CI would fail without."""
    repo = Path(__file__).resolve().parent.parent
    script = (repo / "deploy" / "local" / "system-deps.sh").read_text()
    checked = set(re.findall(r"command -v (\S+) ", script))
    for line in re.findall(r"^\s*want \S+ (.+?)(?:\s+#.*)?$", script, re.M):
        checked |= set(line.split())
    required: set[str] = {"java", "mvn"}
    for path in (repo / "tests").rglob("test_*.py"):
        if path.name == "test_tools.py":  # its own fake names
            continue
        for args in re.findall(r"requires_tool\(([^)]*)\)", path.read_text()):
            names = re.findall(r'"([a-z][a-z0-9-]*)"', args)
            if names:
                required.add(names[0])
    assert {"prometheus", "promtool", "kcat", "chromium"} <= required
    assert required <= checked, f"not checked by system-deps.sh: {sorted(required - checked)}"
