"""How long `dlc check` takes, as an editor or a pre-commit hook sees it: a new process each time.

    nice .venv/bin/python -m benchmarks.cli_latency --runs 7

Scenarios (each a fresh `python -m compiler.cli check ...` process; wall time, median of
`--runs`, after one untimed run that fills the operating system's file cache):

- **cached**: the check cache holds the answer (nothing changed since the last check).
- **edited**: the spec changed, so the check cache misses, but the parsed stdlib modules
  and lark's parser tables are cached (the edit-check loop).
- **uncached**: `DLC_NO_CACHE=1`, every stage from scratch (a first run, or CI without a cache).

Each scenario uses its own temporary cache folder (`DLC_CACHE_DIR`), so the user's cache is
never touched.  The CPU model and ISA are printed with the figures; the machine may be shared,
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


def run_check(paths: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one `dlc check` process; the check must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "compiler.cli", "check", *paths], cwd=ROOT, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"dlc check {' '.join(paths)} failed:\n{done.stderr}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def scenario_env(kind: str, cache: Path) -> dict[str, str]:
    env = {**os.environ, "DLC_CACHE_DIR": str(cache)}
    env.pop("DLC_NO_CACHE", None)
    if kind == "uncached":
        env["DLC_NO_CACHE"] = "1"
    return env


def measure(kind: str, paths: list[str], runs: int) -> list[tuple[float, float]]:
    with tempfile.TemporaryDirectory(prefix="dlc-latency-") as tmp:
        cache = Path(tmp)
        env = scenario_env(kind, cache)
        run_check(paths, env)                       # fills the caches and the OS file cache
        samples = []
        for _ in range(runs):
            if kind == "edited":                   # as if the spec had changed: no stored answer
                shutil.rmtree(cache / "check", ignore_errors=True)
            samples.append(run_check(paths, env))
        return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--scenarios", default="cached,edited,uncached")
    args = parser.parse_args()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# dlc check latency: {cpu_description()}; python {sys.version.split()[0]}; "
          f"load average at start {load:.1f}; median of {args.runs} cold processes\n")
    print("| command | scenario | median s | min–max s | median CPU s | target s |\n|---|---|---|---|---|---|")
    for target, limit in TARGETS.items():
        for kind in args.scenarios.split(","):
            samples = measure(kind, target.split(), args.runs)
            walls = [wall for wall, _ in samples]
            print(f"| `dlc check {target}` | {kind} | {statistics.median(walls):.3f} | "
                  f"{min(walls):.3f}–{max(walls):.3f} | {statistics.median(cpu for _, cpu in samples):.3f} | {limit} |")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
