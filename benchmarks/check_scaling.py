"""How `dlc check` scales with model size: a chain of N ReLUs, N = 2,500 ... 20,000, CPU time
per stage (parse, resolve, infer, names), and the ratio of each doubling (2.0 is linear,
4.0 quadratic).  CPU time, not wall time, because the machine is shared.

    .venv/bin/python -m benchmarks.check_scaling
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from compiler.check.shapes import infer_program
from compiler.check.ties import check_ties
from compiler.codegen.names import name_diagnostics
from compiler.elaborate.loader import Loader
from compiler.elaborate.resolve import Resolver
from compiler.syntax.parser import _lark, parse_file


def chain(n: int) -> str:
    lines = ["model M(d: int = 4) {", "  in x0: [B, d]"]
    lines += [f"  x{i + 1} = ReLU()(x{i})" for i in range(n)]
    return "\n".join(lines + [f"  out y = x{n}", "}"]) + "\n"


def stages(path: Path) -> dict[str, float]:
    clock = time.process_time
    times: dict[str, float] = {}
    start = clock()
    parse_file(path)
    times["parse"] = clock() - start
    start = clock()
    loader = Loader()
    module = loader.load(path)
    resolver = Resolver(loader)
    program = resolver.resolve_module(module, {})
    times["resolve"] = clock() - start - times["parse"]      # the loader parses again
    start = clock()
    infer_program(program)
    check_ties(program)
    times["infer"] = clock() - start
    start = clock()
    name_diagnostics(program)
    times["names"] = clock() - start
    times["total"] = sum(times.values())
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="2500,5000,10000,20000")
    args = parser.parse_args()
    _lark()                                  # the grammar is built once per process, not per spec
    previous = None
    print(f"{'nodes':>7} " + " ".join(f"{k:>8}" for k in ("parse", "resolve", "infer", "names", "total")) + "  ratio")
    with tempfile.TemporaryDirectory() as folder:
        for n in map(int, args.sizes.split(",")):
            path = Path(folder) / "chain.dl"
            path.write_text(chain(n))
            times = stages(path)
            ratio = f"{times['total'] / previous:.2f}" if previous else ""
            print(f"{n:>7} " + " ".join(f"{times[k]:8.2f}" for k in ("parse", "resolve", "infer", "names", "total"))
                  + f"  {ratio}")
            previous = times["total"]


if __name__ == "__main__":
    main()
