"""`dlc check` of many specs shared among worker processes (compiler/workers.py): every answer,
exit status and report is the one a check in one process gives, spec by spec, for good specs,
specs with errors inside shared stdlib blocks, syntax errors, `-D` overrides, with the check
cache on and off; and the worker pool itself keeps the items' order, reruns what failed or
died in a child, and raises the exception a sequential run raises."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from compiler import workers
from compiler.driver import CheckRequest, check, check_diagnostics, check_many
from compiler.workers import map_in_workers

ROOT = Path(__file__).resolve().parent.parent

# Errors raised inside stdlib blocks every spec shares, next to clean users of the same blocks.
SPECS = {
    "good_attention.dl": "import attention\nmodel Attn(d: int = 8, heads: int = 2) {\n    in x: [B, S, d]\n"
                         "    out y = MultiHeadAttention(d, heads)(x, x)\n}\n",
    "bad_heads.dl": "import attention\nmodel Heads() {\n    in x: [B, S, 10]\n"
                    "    out y = MultiHeadAttention(10, 3)(x, x)\n}\n",
    "bad_width.dl": "import layers\nmodel Width() {\n    in x: [B, S, 6]\n    out y = FeedForward(8, 32)(x)\n}\n",
    "good_ffn.dl": "import layers\nmodel Ffn(d: int = 8) {\n    in x: [B, S, d]\n    out y = FeedForward(d, 4 * d)(x)\n}\n",
    "syntax.dl": "import layers\nmodel Broken( {\n",
    "unused.dl": "import layers\nmodel Unused(d: int = 4) {\n    in x: [B, d]\n    in extra: [B, d]\n"
                 "    out y = x + x\n}\n",
}


@pytest.fixture()
def project(tmp_path: Path, monkeypatch) -> list[Path]:
    """The specs above in a folder of their own, checked from it, with no check cache."""
    for name, text in SPECS.items():
        (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DLC_NO_CACHE", "1")
    return sorted(Path(name) for name in SPECS)


def _alone(specs: list[Path], overrides: dict | None = None) -> list:
    """Each spec's diagnostics from a check of its own (what sharing must not change)."""
    return [check(spec, dict(overrides or {}), all_blocks=True).diagnostics for spec in specs]


@pytest.mark.parametrize("jobs", [1, 2, 3])
def test_checking_specs_together_gives_each_the_answer_it_gets_alone(project, jobs):
    requests = [CheckRequest(spec, {}, all_blocks=True) for spec in project]
    together = check_many(requests, jobs)
    assert together == _alone(project)
    codes = {d.code for answer in together for d in answer}
    assert {"DLC001", "DLC007"} <= codes          # the errors are there to compare, not absent in both


def test_overrides_reach_every_worker(project):
    specs = [Path("good_attention.dl"), Path("good_ffn.dl")] * 2
    # heads=3 does not divide d=8: the same error in every copy, located the same way
    requests = [CheckRequest(spec, {"d": 8, "heads": 3} if spec.name.startswith("good_a") else {"d": 6}, True)
                for spec in specs]
    together = check_many(requests, 2)
    alone = [check(r.spec, dict(r.overrides), all_blocks=True).diagnostics for r in requests]
    assert together == alone and together[0] and not together[1]


def test_answers_from_the_cache_and_from_workers_agree(project, tmp_path, monkeypatch):
    monkeypatch.delenv("DLC_NO_CACHE")
    monkeypatch.setenv("DLC_CACHE_DIR", str(tmp_path / "cache"))
    requests = lambda: [CheckRequest(spec, {}, all_blocks=True) for spec in project]    # noqa: E731
    first = check_many(requests(), 2)             # every spec checked in a worker, answers stored
    again = check_many(requests(), 2)             # every answer read back from the cache
    single = [check_diagnostics(spec, all_blocks=True) for spec in project]
    assert first == again == single == _alone(project)


def _dlc(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DLC_NO_CACHE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "compiler.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("form", [pytest.param([], id="text"),      # the other forms: seconds each, slow lane
                                  pytest.param(["--format", "json"], id="json", marks=pytest.mark.slow),
                                  pytest.param(["--format", "sarif"], id="sarif", marks=pytest.mark.slow),
                                  pytest.param(["--strict"], id="strict", marks=pytest.mark.slow)])
def test_the_command_reports_the_same_with_one_process_or_several(project, tmp_path, form):
    args = ["check", *form, *map(str, project)]
    one, several = _dlc([*args, "-j", "1"], tmp_path), _dlc([*args, "-j", "3"], tmp_path)
    assert one.returncode == several.returncode == 1
    if form[:2] == ["--format", "sarif"]:     # the command line is recorded: it differs in `-j`
        one_log, several_log = json.loads(one.stdout), json.loads(several.stdout)
        for log in (one_log, several_log):
            log["runs"][0]["invocations"][0].pop("commandLine", None)
            log["runs"][0]["invocations"][0].pop("arguments", None)
        assert one_log == several_log
    else:
        assert one.stdout == several.stdout
    assert one.stderr == several.stderr


@pytest.mark.slow
def test_the_project_specs_check_the_same_in_several_processes():
    one = _dlc(["check", "-j", "1", "--format", "json", "specs", "stdlib"], ROOT)
    several = _dlc(["check", "-j", "2", "--format", "json", "specs", "stdlib"], ROOT)
    assert one.returncode == several.returncode == 0
    assert one.stdout == several.stdout


def test_a_number_of_jobs_below_one_is_a_usage_error(project, tmp_path):
    done = _dlc(["check", "-j", "0", "good_ffn.dl"], tmp_path)
    assert done.returncode == 2 and "number of processes" in done.stderr


# ---------------------------------------------------------------------------- the pool itself
def _square_or_fail(n: int) -> int:
    if n == 5:
        raise ValueError(f"item {n}")
    return n * n


def test_results_come_back_in_order_and_a_failed_item_raises_as_in_order():
    assert map_in_workers(lambda n: n * n, list(range(40)), 3) == [n * n for n in range(40)]
    with pytest.raises(ValueError, match="item 5"):
        map_in_workers(_square_or_fail, list(range(12)), 3)


def test_an_item_whose_worker_died_is_run_again_here():
    parent = os.getpid()

    def die_in_a_child(n: int) -> int:
        if os.getpid() != parent:
            os._exit(3)          # a worker killed mid-item: nothing it did comes back
        return n + 1

    assert map_in_workers(die_in_a_child, list(range(8)), 2) == list(range(1, 9))


def test_one_process_where_forking_is_unsafe(monkeypatch):
    monkeypatch.setitem(sys.modules, "threading", SimpleNamespace(active_count=lambda: 2))
    assert workers.default_jobs(10) == 1
    monkeypatch.setitem(sys.modules, "threading", SimpleNamespace(active_count=lambda: 1))
    monkeypatch.setattr(workers, "available_cpus", lambda: 4)
    monkeypatch.setattr(workers.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert workers.default_jobs(10) == (4 if sys.platform == "linux" else 1)
    assert workers.default_jobs(2) == (2 if sys.platform == "linux" else 1)
    monkeypatch.setattr(workers.os, "getloadavg", lambda: (3.9, 0.0, 0.0))     # no idle CPU
    assert workers.default_jobs(10) == 1


CORPUS = sorted((ROOT / "tests" / "fuzz_corpus").glob("*.dl")) + sorted((ROOT / "tests" / "diagnostics").rglob("*.dl"))


@pytest.mark.slow       # ~10 s: each spec checked twice; the fast lane's mixed project covers the same path
def test_the_error_corpora_check_the_same_together_as_alone(monkeypatch):
    """Dozens of broken specs (the fuzz corpus, the diagnostic cases): every diagnostic, in order."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("DLC_NO_CACHE", "1")
    specs = [spec.relative_to(ROOT) for spec in CORPUS]
    together = check_many([CheckRequest(spec, {}, all_blocks=True) for spec in specs], 2)
    assert together == _alone(specs)
    assert sum(bool(answer) for answer in together) > len(specs) // 2     # mostly specs with errors
