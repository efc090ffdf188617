"""A fuzzing campaign over the whole compiler, longer than the test suite's.

Two populations:
- mutants: the specs of specs/ and stdlib/ and random valid specs, edited 1-4 times by the
  grammar-aware token mutator (tests/fuzzing.py) or the byte-level one (tests/test_fuzz.py),
  compiled at a random -O level; each must end in diagnostics or in a module that imports;
- valid: random valid specs (tests/fuzzing.random_valid_spec) compiled at -O0, -O1 and -O2,
  run on the same weights and input; the three must agree.

Every input runs under a CPU-time bound (a hang is a finding).  Findings are written to --out;
add them to tests/fuzz_corpus/ with the fix.

    nice -n 19 .venv/bin/python scripts/fuzz.py --mutants 20000 --valid 1000 --seed 14
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import tests.conftest  # noqa: E402,F401  (torchvision stub, as the test suite has it)
from tests.fuzzing import mutate_tokens, random_valid_spec, run_mutant, run_valid  # noqa: E402
from tests.test_fuzz import SPECS, _mutate  # noqa: E402


def _mutant(rng: random.Random) -> tuple[str, str]:
    if rng.random() < 0.2:
        source, text = "random valid spec", random_valid_spec(rng)
    else:
        spec = rng.choice(SPECS)
        source, text = spec.name, spec.read_text()
    for _ in range(rng.randint(1, 4)):
        text = mutate_tokens(text, rng) if rng.random() < 0.7 else _mutate(text, rng)
    return source, text


def _record(out: Path, kind: str, index: int, text: str, problem: str, findings: Counter) -> None:
    findings[problem.split(":")[0]] += 1
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{kind}_{index}.dl").write_text(f"# {problem[:300]}\n{text}")
    print(f"{kind} {index}: {problem[:200]}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mutants", type=int, default=2000)
    parser.add_argument("--valid", type=int, default=100)
    parser.add_argument("--out", type=Path, default=Path("fuzz-findings"))
    parser.add_argument("--summary", type=Path, help="write the figures as JSON here")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="dlc-fuzz-"))
    for spec in SPECS:                      # mutants import their unmutated neighbours
        shutil.copy(spec, work / spec.name)
    findings: Counter = Counter()
    started = time.time()
    for index in range(args.mutants):
        source, text = _mutant(rng)
        path = work / f"mutant_{index % 7}.dl"
        path.write_text(text)
        problem = run_mutant(path, rng.choice([0, 1, 2]), work)
        if problem:
            _record(args.out, "mutant", index, text, f"{problem} (from {source})", findings)
        if index % 250 == 249:
            print(f"{index + 1} mutants, {sum(findings.values())} findings, {time.time() - started:.0f}s", flush=True)
    mutant_seconds = time.time() - started
    for index in range(args.valid):
        text = random_valid_spec(random.Random(args.seed * 1_000_003 + index))
        problem = run_valid(text, work, index)
        if problem:
            _record(args.out, "valid", index, text, problem, findings)
        if index % 25 == 24:
            print(f"{index + 1} valid specs, {sum(findings.values())} findings", flush=True)
    summary = {"seed": args.seed, "mutants": args.mutants, "valid_specs": args.valid,
               "findings": dict(findings), "mutant_seconds": round(mutant_seconds),
               "total_seconds": round(time.time() - started)}
    print(json.dumps(summary))
    if args.summary:
        args.summary.write_text(json.dumps(summary, indent=2) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if findings else 0)


if __name__ == "__main__":
    main()
