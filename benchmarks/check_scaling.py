"""How `dlc check` scales with the size of a model: chains of 1,000, 5,000 and 20,000 graph
nodes, each size checked cold (`DLC_NO_CACHE=1`) in its own `dlc check` process, as CI runs it.

Shapes of chain:
- `layers`: one model whose body is a chain of layer statements with a `let` every fourth
  line (Linear, ReLU, LayerNorm and residual sums);
- `instances`: a chain of instances of a small two-layer block (every instance is a node of
  the model's graph and has its own graph of two nodes: N nodes in all for N/2 instances);
- `configs`: the same with every instance configured differently, so each is its own block
  specialization, checked on its own.

For each, the table gives the wall and CPU time of the whole process (start-up included),
the CPU time above an empty spec's (the cost of the model itself), microseconds of it per
node, and the ratio of that cost to the previous size's per node (1.0 is linear).  The wall
time is what a user waits; on a shared machine the CPU time is the steadier figure.

An installed dlc runs from compiled bytecode (pip compiles it at install time; Python caches it on
first import).  Where PYTHONDONTWRITEBYTECODE is set, as in some sandboxes, every process would
compile dlc's modules from source again (~0.3 s of each run): the processes measured here cache
their bytecode in a temporary folder instead (PYTHONPYCACHEPREFIX, warmed by one run first);
`--no-bytecode-cache` measures the environment as it is.

    .venv/bin/python -m benchmarks.check_scaling                  # the table
    .venv/bin/python -m benchmarks.check_scaling --sizes 1000,20000 --shapes layers --repeat 5
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.machine import cpu_description

ROOT = Path(__file__).resolve().parent.parent


def layers_chain(n: int) -> str:
    """n nodes in one model body: layers, residual sums, and a `let` every fourth line."""
    lines = ["model Chain(d: int = 16) {", "    in x0: [B, S, d]"]
    for i in range(1, n + 1):
        if i % 4 == 0:
            lines.append(f"    let w{i} = d * {i % 7 + 1} // {i % 7 + 1}")
            lines.append(f"    x{i} = Linear(d, w{i})(x{i - 1})")
        elif i % 4 == 1:
            lines.append(f"    x{i} = ReLU()(x{i - 1})")
        elif i % 4 == 2:
            lines.append(f"    x{i} = LayerNorm(d)(x{i - 1})")
        else:
            lines.append(f"    x{i} = x{i - 1} + x{i - 2}")
    return "\n".join(lines + [f"    out y = x{n}", "}"]) + "\n"


def instances_chain(n: int, distinct: bool = False) -> str:
    """n // 2 instances of a two-layer block; `distinct` gives each its own configuration."""
    lines = ["block Step(d: int, k: int = 0) {", "    in x: [B, S, d]", "    h = Linear(d, d)(x)",
             "    out y = ReLU()(h)", "}", "", "model Chain(d: int = 16) {", "    in x0: [B, S, d]"]
    count = n // 2
    for i in range(1, count + 1):
        config = f"d, k={i}" if distinct else "d"
        lines.append(f"    x{i} = Step({config})(x{i - 1})")
    return "\n".join(lines + [f"    out y = x{count}", "}"]) + "\n"


SHAPES = {"layers": layers_chain, "instances": instances_chain,
          "configs": lambda n: instances_chain(n, distinct=True)}
EMPTY = "model Chain(d: int = 16) {\n    in x0: [B, S, d]\n    out y = x0\n}\n"


def check_environment(folder: Path, bytecode_cache: bool) -> dict[str, str]:
    """The environment of the measured processes: no check cache, and (`bytecode_cache`) Python's
    bytecode cache on, in `folder`, whatever this environment says."""
    env = dict(os.environ, DLC_NO_CACHE="1")
    if bytecode_cache:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(folder / "pycache")
    return env


def time_check(path: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one cold `dlc check path` process; fails loudly if the check fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "compiler.cli", "check", str(path)], env=env, cwd=ROOT,
                          capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"dlc check {path} failed:\n{done.stdout}{done.stderr}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def best_of(path: Path, repeat: int, env: dict[str, str]) -> tuple[float, float]:
    """The fastest of `repeat` runs, wall and CPU taken from the same run (noise only adds time)."""
    return min((time_check(path, env) for _ in range(repeat)), key=lambda t: t[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,5000,20000")
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--repeat", type=int, default=3, help="runs per size; the fastest counts")
    parser.add_argument("--no-bytecode-cache", action="store_true",
                        help="keep this environment's PYTHONDONTWRITEBYTECODE (every run compiles dlc from source)")
    args = parser.parse_args()
    print(cpu_description())
    print(f"load average {os.getloadavg()[0]:.1f}; best of {args.repeat} cold `dlc check` processes per size")
    with tempfile.TemporaryDirectory() as folder:
        env = check_environment(Path(folder), bytecode_cache=not args.no_bytecode_cache)
        print("bytecode: " + ("compiled from source in every process" if "PYTHONDONTWRITEBYTECODE" in env
                              else "cached, as an installed dlc runs") + "\n")
        empty = Path(folder) / "empty.dl"
        empty.write_text(EMPTY)
        time_check(empty, env)          # warms the bytecode cache (and the disk's) up
        base_wall, base_cpu = best_of(empty, args.repeat, env)
        print(f"empty spec: {base_wall:.2f} s wall, {base_cpu:.2f} s CPU (start-up, imports)\n")
        print(f"{'shape':<10} {'nodes':>7} {'wall s':>7} {'CPU s':>7} {'model CPU s':>11} {'us/node':>8} {'ratio':>6}")
        for shape in args.shapes.split(","):
            previous = None
            for n in map(int, args.sizes.split(",")):
                path = Path(folder) / f"{shape}_{n}.dl"
                path.write_text(SHAPES[shape](n))
                wall, cpu = best_of(path, args.repeat, env)
                per_node = max(cpu - base_cpu, 0.0) / n * 1e6
                ratio = f"{per_node / previous:.2f}" if previous else ""
                print(f"{shape:<10} {n:>7,} {wall:>7.2f} {cpu:>7.2f} {cpu - base_cpu:>11.2f} {per_node:>8.0f} {ratio:>6}")
                previous = per_node


if __name__ == "__main__":
    main()
