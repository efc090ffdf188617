"""The opt-in pytest plugin reports each spec as a passed or failed test."""
from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

GOOD = """model Good(d: int = 4) {
    in x: [B, d]
    out y = Linear(d, d)(x)
}
"""
BAD = """model Bad(d: int = 4) {
    in x: [B, d]
    out y = Linear(d + 1, d)(x)
}
"""


def test_specs_become_test_items(pytester: pytest.Pytester):
    pytester.makefile(".dl", good=GOOD, bad=BAD)
    result = pytester.runpytest("--dlc")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*bad.dl:3:13: error[[]DLC007[]]: Linear: the last dimension*"])


def test_plugin_is_opt_in(pytester: pytest.Pytester):
    pytester.makefile(".dl", bad=BAD)
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_ini_switch(pytester: pytest.Pytester):
    pytester.makefile(".dl", good=GOOD)
    pytester.makeini("[pytest]\ndlc = true\n")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
