"""The framework boundary: Faust, mode and aiokafka internals (and aiohttp's, which Faust
serves HTTP through) are touched only in ``streams/faust_ext/``, and that room was
checked against the installed Faust, aiokafka and aiohttp."""

from __future__ import annotations

import ast
import importlib.metadata
from pathlib import Path

from streams.faust_ext import (
    CHECKED_AIOHTTP_VERSION,
    CHECKED_AIOKAFKA_VERSION,
    CHECKED_FAUST_VERSION,
)

REPO = Path(__file__).resolve().parents[1]
ROOM = REPO / "streams" / "faust_ext"
FRAMEWORKS = ("faust", "mode", "aiokafka", "aiohttp")
SOURCES = [p for d in ("streams", "agents", "bench", "schemas") for p in (REPO / d).rglob("*.py")]


def test_the_installed_faust_is_the_one_the_overrides_were_checked_against() -> None:
    installed = importlib.metadata.version("faust-streaming")
    assert installed == CHECKED_FAUST_VERSION, (
        f"faust-streaming {installed} is installed; streams/faust_ext/ was checked against "
        f"{CHECKED_FAUST_VERSION}. Read every module there against the new source, then "
        "update CHECKED_FAUST_VERSION.")
    aiokafka = importlib.metadata.version("aiokafka")
    assert aiokafka.startswith(CHECKED_AIOKAFKA_VERSION + "."), aiokafka
    aiohttp = importlib.metadata.version("aiohttp")
    assert aiohttp.startswith(CHECKED_AIOHTTP_VERSION + "."), (
        f"aiohttp {aiohttp} is installed; streams/faust_ext/http_errors.py overrides its "
        f"request handler as of {CHECKED_AIOHTTP_VERSION}. Read it against the new source.")


def test_every_module_of_the_room_says_what_it_changes_and_the_version() -> None:
    modules = [p for p in ROOM.glob("*.py") if p.name != "__init__.py"]
    assert len(modules) >= 8
    for path in modules:
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
        assert f"faust-streaming {CHECKED_FAUST_VERSION}" in doc, path.name
        assert "upstream" in doc.lower(), path.name
        if "aiohttp" in _imported_roots(ast.parse(path.read_text())):
            assert f"aiohttp {CHECKED_AIOHTTP_VERSION}." in doc, path.name


def _imported_roots(tree: ast.Module) -> set[str]:
    """The top-level packages a module imports from."""
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            roots.add(node.module.split(".")[0])
    return roots


def _framework_names(tree: ast.Module) -> set[str]:
    """Local names bound to a framework module or to something imported from one."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] in FRAMEWORKS:
                    names.add((a.asname or a.name).split(".")[0])
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in FRAMEWORKS:
            names.update(a.asname or a.name for a in node.names)
    return names


def private_uses(source: str) -> list[str]:
    """Private attribute reads on anything but the code's own ``self``/``cls``, calls of a
    parent's private method, and classes derived from a framework class."""
    tree = ast.parse(source)
    framework = _framework_names(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") \
                and not node.attr.startswith("__"):
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                continue
            found.append(f"line {node.lineno}: .{node.attr}")
        elif isinstance(node, ast.ClassDef):
            for base in node.bases:
                root = base
                while isinstance(root, ast.Attribute):
                    root = root.value
                if isinstance(root, ast.Name) and root.id in framework:
                    found.append(f"line {node.lineno}: class {node.name} derives from "
                                 f"{ast.unparse(base)}")
    return found


def test_no_module_outside_the_room_touches_framework_internals() -> None:
    offenders = {}
    for path in SOURCES:
        if ROOM in path.parents:
            continue
        uses = private_uses(path.read_text())
        if uses:
            offenders[str(path.relative_to(REPO))] = uses
    assert offenders == {}


def test_the_scan_finds_what_it_looks_for() -> None:
    assert private_uses("x = consumer._committed_offset\n") == ["line 1: ._committed_offset"]
    assert private_uses("import faust\nclass A(faust.Worker):\n    pass\n") == [
        "line 2: class A derives from faust.Worker"]
    assert private_uses("class A:\n    def f(self):\n        return self._x\n") == []
    assert private_uses("from mode import Service\nclass S(Service):\n    pass\n") == [
        "line 2: class S derives from Service"]
    assert private_uses("from aiohttp import web\nclass R(web.AppRunner):\n    pass\n") == [
        "line 2: class R derives from web.AppRunner"]
