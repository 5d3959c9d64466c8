"""The public contracts (JSON Schema files beside this module) and their Python side."""

from pathlib import Path

SCHEMA_DIR = Path(__file__).resolve().parent


def schema_path(name: str) -> Path:
    """Path of a schema file shipped with the package, e.g. ``touchpoint-event.v1``."""
    return SCHEMA_DIR / f"{name}.schema.json"
