"""Reference libraries imported when a test first uses them, not when pytest collects the module.

Each pytest-xdist worker collects every test module; a module-level `pytest.importorskip("transformers")`
made both workers pay for importing transformers (0.9 s of CPU), sympy (0.55 s) and networkx (0.3 s)
although only the worker that runs those tests uses them (tests/worker_schedule.py keeps the
transformers tests on the first worker).  `lazy_import(name)` stands in for the module: the first
attribute read imports it through `pytest.importorskip`, so a missing library still skips the tests
that need it (now one test at a time rather than the whole module at collection).
"""
from __future__ import annotations

import pytest


class LazyModule:
    """A module imported on its first attribute read."""

    __slots__ = ("_name", "_module")

    def __init__(self, name: str) -> None:
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_module", None)

    def __getattr__(self, attribute: str):
        module = object.__getattribute__(self, "_module")
        if module is None and attribute.startswith("_"):
            # pytest's collection asks every module attribute for `_mock_name` and `__wrapped__`
            # (looking for wrapped fixtures, pytest 9): importing there imported transformers, sympy
            # and networkx in both workers again (3-4 s of CPU each).  Tests read public names only.
            raise AttributeError(attribute)
        if module is None:
            module = pytest.importorskip(object.__getattribute__(self, "_name"))
            object.__setattr__(self, "_module", module)
        return getattr(module, attribute)

    def __repr__(self) -> str:
        return f"<lazy module {object.__getattribute__(self, '_name')!r}>"


def lazy_import(name: str) -> LazyModule:
    """Stand-in for `pytest.importorskip(name)` that imports on first use."""
    return LazyModule(name)
