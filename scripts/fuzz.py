"""A longer fuzzing campaign than the test suite's: mutate the stdlib specs and run
the whole compiler (parse, resolve, infer, passes, codegen, Python's compile()) on
each mutant for SECONDS; every input must end in success or diagnostics.

    .venv/bin/python scripts/fuzz.py --seed 1 --seconds 240

Crashing inputs are written to --out; add them to tests/fuzz_corpus/ with the fix.
"""
from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from compiler.driver import compile_spec  # noqa: E402
from tests.test_fuzz import SPECS, _mutate  # noqa: E402


def run_one(path: Path, level: int) -> str | None:
    """None when the compiler behaved; otherwise what went wrong."""
    try:
        result = compile_spec(path, opt_level=level)
        if result.text is not None:
            compile(result.text, str(path), "exec")
        internal = [d.message for d in result.diagnostics if d.code == "DLC000"]
        return internal[0] if internal else None
    except Exception as exc:  # the point of the campaign: any escape is a bug
        return f"{type(exc).__name__}: {exc}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--out", type=Path, default=Path("fuzz-crashes"))
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp())
    for spec in SPECS:                      # mutants import their unmutated neighbours
        shutil.copy(spec, work / spec.name)
    runs = crashes = 0
    deadline = time.time() + args.seconds
    while time.time() < deadline:
        source = rng.choice(SPECS)
        text = source.read_text()
        for _ in range(rng.randint(1, 4)):
            text = _mutate(text, rng)
        path = work / f"mutant_{source.name}"
        path.write_text(text)
        runs += 1
        problem = run_one(path, rng.choice([0, 1, 2]))
        if problem:
            crashes += 1
            args.out.mkdir(exist_ok=True)
            (args.out / f"crash_{args.seed}_{crashes}.dl").write_text(text)
            print(f"crash {crashes} from {source.name}: {problem[:200]}")
    print(f"{runs} mutants, {crashes} crashes")


if __name__ == "__main__":
    main()
