"""How long `dlc check` takes, as an editor or a pre-commit hook sees it: a new process each time.

    nice .venv/bin/python -m benchmarks.cli_latency --runs 7

Scenarios (each a fresh `python -m compiler.cli check ...` process; wall time, median of
`--runs`, after one untimed run that fills the operating system's file cache):

- **cached**: the check cache holds the answer (nothing changed since the last check).
- **edited**: one spec changed since the last check (the edit-check loop): the paths are checked
  in a copy, where a comment line is added to the first spec before each run, so its answer
  misses and the others' may hit.
- **invalidated** (not run by default): every stored answer dropped before each run (as if
  every spec had changed); the parsed-module and lark caches stay.
- **uncached**: `DLC_NO_CACHE=1`, every stage from scratch (a first run, or CI without a cache).

Each scenario uses its own temporary cache folder (`DLC_CACHE_DIR`), so the user's cache is
never touched.  Python's bytecode cache is on, in a temporary folder (PYTHONPYCACHEPREFIX), even
where PYTHONDONTWRITEBYTECODE is set (every process would compile dlc from source: ~0.3 s), as
benchmarks/check_scaling.py does.  `--root DIR` measures another checkout of dlc (an A/B
comparison on a shared machine: `--root BASE --root .` measures both, taking turns run by run);
`--jobs 1,2` runs `dlc check -j 1` and `-j 2` as arms of their own, also taking turns.  The CPU model and ISA are printed with the figures; the machine may be shared,
so each row also gives the median CPU time (user + system) of the process, which other load
inflates far less than wall time.
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.machine import cpu_description

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"specs/bert.dl": 0.3, "specs stdlib": 0.6}   # seconds, from issue 12


def run_check(paths: list[str], env: dict[str, str], cwd: Path = ROOT) -> tuple[float, float]:
    """(wall, CPU) seconds of one `dlc check` process run in `cwd`; the check must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "compiler.cli", "check", *paths], cwd=cwd, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"dlc check {' '.join(paths)} failed:\n{done.stderr}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def scenario_env(kind: str, cache: Path) -> dict[str, str]:
    env = {**os.environ, "DLC_CACHE_DIR": str(cache), "PYTHONPYCACHEPREFIX": str(cache / "pycache")}
    env.pop("DLC_NO_CACHE", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if kind == "uncached":
        env["DLC_NO_CACHE"] = "1"
    return env


def working_copy(root: Path, paths: list[str], folder: Path) -> Path:
    """A copy of `paths` (files or folders, relative to `root`) in `folder`; the spec to edit in it."""
    for path in paths:
        source, target = root / path, folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copy2(source, target)
    first = folder / paths[0]
    return first if first.is_file() else sorted(first.rglob("*.dl"))[0]


Arm = tuple[Path, int | None]     # a checkout, and the `-j` its `dlc check` is given (None: none)


def measure(kind: str, paths: list[str], runs: int, arms: list[Arm]) -> dict[Arm, list[tuple[float, float]]]:
    """Per arm, `runs` samples; the arms take turns run by run."""
    with tempfile.TemporaryDirectory(prefix="dlc-latency-") as tmp:
        caches = {arm: Path(tmp) / str(i) for i, arm in enumerate(arms)}
        envs = {arm: scenario_env(kind, caches[arm]) for arm in arms}
        options = {arm: ["-j", str(arm[1])] if arm[1] else [] for arm in arms}
        cwds, edited = {arm: arm[0] for arm in arms}, {}
        for i, arm in enumerate(arms):
            root = arm[0]
            if kind == "edited":    # checked in a copy, with the checkout's compiler
                cwds[arm] = Path(tmp) / f"work{i}"
                edited[arm] = working_copy(root, paths, cwds[arm])
                envs[arm]["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), envs[arm].get("PYTHONPATH")]))
            run_check(options[arm] + paths, envs[arm], cwds[arm])       # fills the caches and the OS file cache
        samples: dict[Arm, list[tuple[float, float]]] = {arm: [] for arm in arms}
        for run in range(runs):
            for arm in arms:
                if kind == "edited":
                    with open(edited[arm], "a", encoding="utf-8") as spec:
                        spec.write(f"# edit {run}\n")
                elif kind == "invalidated":
                    shutil.rmtree(caches[arm] / "check", ignore_errors=True)
                samples[arm].append(run_check(options[arm] + paths, envs[arm], cwds[arm]))
        return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--scenarios", default="cached,edited,uncached")
    parser.add_argument("--root", type=Path, action="append", default=[], metavar="DIR",
                        help="a dlc checkout to measure (repeatable: the checkouts take turns); default this one")
    parser.add_argument("--jobs", default="", metavar="N[,M...]",
                        help="run `dlc check -j N` (each value an arm of its own, taking turns with the others; "
                             "the checkouts must know -j); default: no -j, dlc's own choice")
    args = parser.parse_args()
    roots = [root.resolve() for root in args.root] or [ROOT]
    arms = [(root, jobs) for root in roots for jobs in ([int(j) for j in args.jobs.split(",") if j] or [None])]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# dlc check latency: {cpu_description()}; python {sys.version.split()[0]}; "
          f"load average at start {load:.1f}; median of {args.runs} cold processes\n")
    where = "| checkout " if len(roots) > 1 else ""     # the -j given shows in the command
    print(f"{where}| command | scenario | median s | min–max s | median CPU s | target s |\n"
          f"{'|---' if where else ''}|---|---|---|---|---|---|")
    for target, limit in TARGETS.items():
        for kind in args.scenarios.split(","):
            for (root, jobs), samples in measure(kind, target.split(), args.runs, arms).items():
                walls = [wall for wall, _ in samples]
                command = f"dlc check {f'-j {jobs} ' if jobs else ''}{target}"
                print((f"| {root} " if where else "") + f"| `{command}` | {kind} | "
                      f"{statistics.median(walls):.3f} | {min(walls):.3f}–{max(walls):.3f} | "
                      f"{statistics.median(cpu for _, cpu in samples):.3f} | {limit} |")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
