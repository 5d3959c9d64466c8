"""Machine-level tools the tests call (``deploy/local/system-deps.sh`` installs them).

Locally a missing tool skips the tests that need it; under ``CI=true`` it fails them, so
a CI machine without the tool cannot pass by skipping what it was meant to check.
Use :func:`require_tool` in a test or fixture, or the ``requires_tool`` marker (handled
by :func:`pytest_runtest_setup`, which ``tests/conftest.py`` registers).
"""

from __future__ import annotations

import os
import shutil

import pytest


def in_ci() -> bool:
    """``CI=true`` (or 1/yes), as CI services set it."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def require_tool(*names: str) -> str:
    """The path of the first of ``names`` on PATH; else skip the test (fail it in CI)."""
    for name in names:
        path = shutil.which(name)
        if path is not None:
            return path
    wanted = " or ".join(names)
    if in_ci():
        pytest.fail(f"{wanted} not installed, and CI=true: a missing tool fails the run "
                    f"(deploy/local/system-deps.sh installs it)", pytrace=False)
    pytest.skip(f"{wanted} not installed (make system-deps)")


def pytest_runtest_setup(item: pytest.Item) -> None:
    """``@pytest.mark.requires_tool("a", "b")``: needs a or b (see :func:`require_tool`)."""
    for mark in item.iter_markers("requires_tool"):
        require_tool(*mark.args)
