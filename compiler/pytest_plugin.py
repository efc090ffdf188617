"""An opt-in pytest plugin: collect `*.dl` specs as test items.

Enable it with `pytest --dlc specs/` or `dlc = true` under `[pytest]` /
`[tool.pytest.ini_options]`.  Each spec is one item that passes when
`dlc check` finds no error, and fails with the rendered diagnostics.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from compiler.diagnostics import SourceCache, render


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dlc")
    group.addoption("--dlc", action="store_true", default=False, help="collect *.dl specs as dlc check items")
    group.addoption("--dlc-strict", action="store_true", default=False, help="dlc warnings fail the spec too")
    parser.addini("dlc", type="bool", default=False, help="collect *.dl specs as dlc check items")


def _enabled(config: pytest.Config) -> bool:
    return bool(config.getoption("dlc") or config.getini("dlc"))


def pytest_collect_file(parent: pytest.Collector, file_path: Path):
    if file_path.suffix == ".dl" and _enabled(parent.config):
        return SpecFile.from_parent(parent, path=file_path)
    return None


class SpecFailed(Exception):
    pass


class SpecFile(pytest.File):
    def collect(self):
        yield SpecItem.from_parent(self, name="dlc-check")


class SpecItem(pytest.Item):
    def runtest(self) -> None:
        from compiler.driver import check
        result = check(self.path, all_blocks=True)
        strict = self.config.getoption("dlc_strict")
        failing = [d for d in result.diagnostics if d.is_error or strict]
        if failing:
            sources = SourceCache()
            raise SpecFailed("\n".join(render(d, sources) for d in failing))

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, SpecFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        return self.path, None, f"dlc check {self.path.name}"
