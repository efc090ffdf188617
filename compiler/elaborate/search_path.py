"""Where `import name` looks for `name.dl`: the importer's folder, then `DLC_PATH`, then the
bundled stdlib.  Kept apart from the loader, and free of heavy imports, so the check cache can
fingerprint these folders without building a parser."""
from __future__ import annotations

import os
from pathlib import Path


def _bundled_stdlib() -> Path:
    """The standard library: package data of an installed dlc, else the checkout's top-level folder.
    (The package's folder from `__file__`, as importlib.resources.files("compiler") gives it for an
    installed package, without importing importlib.resources and the zip readers behind it.)"""
    installed = Path(__file__).parent.parent / "stdlib"
    return installed if installed.is_dir() else Path(__file__).resolve().parents[2] / "stdlib"


STDLIB = _bundled_stdlib()


def search_path() -> list[Path]:
    """The folders searched after the importer's own, in order (the stdlib last)."""
    extra = [Path(p) for p in os.environ.get("DLC_PATH", "").split(os.pathsep) if p]
    return [*extra, STDLIB]


def import_folders(importer: Path) -> list[Path]:
    """The folders an import in the file `importer` is looked for in, in order: its own, then
    search_path()'s."""
    return [importer.parent, *search_path()]
