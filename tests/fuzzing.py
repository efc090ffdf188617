"""Fuzzing machinery shared by tests/test_fuzz.py (bounded, in CI) and scripts/fuzz.py (campaigns).

- `random_valid_spec(rng)`: a random *valid* model built from the primitives: blocks calling
  earlier blocks, `repeat`, static `if`, attention from the stdlib, residuals, splits, paired
  transposes; every block maps [B, S, d] to [B, S, d].
- `mutate_tokens(text, rng)`: a grammar-aware mutator: it edits tokens of the language (numbers
  to extremes, names to reserved or other names, operators to other operators, statements
  duplicated, swapped or replaced by known-hostile ones) rather than bytes.
- `run_mutant` / `run_valid`: one input through the whole pipeline, under a CPU-time bound,
  returning what went wrong or None.
"""
from __future__ import annotations

import itertools
import random
import re
import shutil
import signal
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from compiler.driver import compile_spec

CPU_BOUND_S = 20.0
_modules = itertools.count()

# ----------------------------------------------------------------------------- valid specs
_UNARY = ["ReLU()", "GELU()", "Tanh()", "SiLU()", "Sigmoid()", "LayerNorm(d)", "RMSNorm(d)", "Dropout(0.0)",
          "Linear(d, d)", "Linear(d, d, bias=false)", "Softmax(-1)", "LeakyReLU(0.1)"]


@dataclass
class _Body:
    rng: random.Random
    blocks: list[str]
    lines: list[str]
    values: list[str]
    counter: itertools.count

    def fresh(self) -> str:
        return f"h{next(self.counter)}"

    def last(self) -> str:
        return self.values[-1]

    def emit(self, line: str, name: str) -> None:
        self.lines.append(line)
        self.values.append(name)

    def step(self, depth: int) -> None:
        rng, h, name = self.rng, self.last(), self.fresh()
        kind = rng.randrange(10)
        if kind <= 2:
            self.emit(f"  {name} = {rng.choice(_UNARY)}({h})", name)
        elif kind == 3 and len(self.values) > 1:
            other = rng.choice(self.values[:-1])
            # a product squashes one side, or stacked blocks square values into inf (campaign, seed 15)
            left = f"Tanh()({h})" if rng.random() < 0.5 else h
            op = rng.choice(["+", "-", "*"])
            self.emit(f"  {name} = {left if op == '*' else h} {op} {other}", name)
        elif kind == 4:
            self.emit(f"  {name} = {h} {rng.choice(['* 0.5', '/ 2.0', '* 1.5'])}", name)
        elif kind == 5:
            wide = self.fresh()
            self.lines.append(f"  {wide} = GELU()(Linear(d, d * 2)({h}))")
            self.emit(f"  {name} = Linear(d * 2, d)({wide})", name)
        elif kind == 6:
            self.emit(f"  {name} = MultiHeadAttention(d, {rng.choice([1, 2, 4])})({h}, {h})", name)
        elif kind == 7:
            a, b = self.fresh(), self.fresh()
            self.lines.append(f"  {a}, {b} = Split([d // 2, d // 2], -1)({h})")
            self.emit(f"  {name} = Concat(-1)({b}, {a})", name)
        elif kind == 8:
            t = self.fresh()
            self.lines.append(f"  {t} = Transpose(1, 2)({h})")
            self.emit(f"  {name} = Transpose(1, 2)({t})", name)
        elif self.blocks and depth < 3:
            block = rng.choice(self.blocks)
            flag = rng.choice(["", ", flag=false", ", flag=true"])
            if rng.random() < 0.4:
                self.emit(f"  {name} = repeat({rng.randint(1, 3)}) {block}(d{flag})({h})", name)
            else:
                self.emit(f"  {name} = {block}(d{flag})({h})", name)
        else:
            self.emit(f"  {name} = ReLU()({h})", name)


def _block_body(rng: random.Random, blocks: list[str], depth: int) -> list[str]:
    body = _Body(rng, blocks, [], ["x"], itertools.count())
    for _ in range(rng.randint(1, 5)):
        body.step(depth)
    if rng.random() < 0.5:                            # a static branch on the block's flag
        then = _Body(rng, blocks, [], list(body.values), body.counter)
        orelse = _Body(rng, blocks, [], list(body.values), body.counter)
        then.step(depth)
        orelse.step(depth)
        joined = f"j{next(body.counter)}"
        then.lines.append(f"  {joined} = {then.last()}")
        orelse.lines.append(f"  {joined} = {orelse.last()}")
        body.lines += ["  if flag {", *("  " + line for line in then.lines), "  } else {",
                       *("  " + line for line in orelse.lines), "  }"]
        body.values.append(joined)
    if rng.random() < 0.3:
        body.lines.append(f"  for i in range({rng.randint(1, 4)}) {{\n    let unused_{next(body.counter)} = i * d\n  }}")
    return body.lines + [f"  out y = {body.last()}"]


def random_valid_spec(rng: random.Random) -> str:
    """A random model that dlc must compile, and whose -O levels must agree numerically."""
    lines = ["import attention", ""]
    blocks: list[str] = []
    for index in range(rng.randint(0, 3)):
        name = f"Part{index}"
        lines += [f"block {name}(d: int, flag: bool = true) {{", "  in x: [B, S, d]",
                  *_block_body(rng, blocks, 1), "}", ""]
        blocks.append(name)
    d = rng.choice([8, 12, 16])
    lines += [f"model Net(d: int = {d}, flag: bool = {rng.choice(['true', 'false'])}) {{", "  in x: [B, S, d]",
              *_block_body(rng, blocks, 0), "}"]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- the mutator
_HOSTILE_STATEMENTS = [
    "let e = 1e200 ** 2.0", "let e = 0 ** -1", "let e = int(1e308 * 10.0)", "let e = 2 ** 62 * 4",
    "for i in range(65536) { for j in range(65536) { } }", "let s = \"ab\" + \"cd\"", "q = x // x",
    "q = x % x", "q = x ** x", "register_forward_hook = Linear(1, 1)(x)", "_modules = ReLU()(x)",
    "rename \"a.{i}.b.{i}.\" -> \"c.{i}.\"", "let e = sqrt(0 - 1)", "let e = (0 - 8.0) ** 0.5",
    "load_reference_state_dict = Linear(4, 4)(x)", "let l = range(100000)",
]
_INTS = ["0", "1", "2", "3", "7", "-1", "4096", "4097", "65536", "4611686018427387904", "4611686018427387905",
         "1" + "0" * 30, "9" * 120]
_FLOATS = ["0.0", "1e308", "1e-320", "1e200", "0.5", "1e-5", "2.5"]
_NAMES = ["register_forward_hook", "_modules", "forward", "training", "torch", "nn", "F", "self", "math", "re",
          "join_fused_keys", "PackedLinear", "REFERENCE_RENAMES", "optimize_for_inference", "class", "match",
          "__init__", "B", "S", "d", "x", "y", "int", "len", "range", "None", "print", "Linear", "repeat"]
_OPERATORS = ["+", "-", "*", "/", "//", "%", "**", "@", "==", "!=", "<", ">="]


@lru_cache(maxsize=1)
def _lexer():
    import lark
    grammar = (Path(__file__).resolve().parent.parent / "compiler" / "syntax" / "grammar.lark").read_text()
    return lark.Lark(grammar, parser="lalr", lexer="basic")


def _tokens(text: str) -> list:
    try:
        return list(_lexer().lex(text))
    except Exception:                  # the text no longer lexes: mutate it as text
        return []


def mutate_tokens(text: str, rng: random.Random) -> str:
    """One token-level edit that keeps the input close to the language."""
    tokens = _tokens(text)
    lines = text.splitlines()
    kind = rng.randrange(8)
    if kind <= 3 and tokens:
        by_type = {"INT": _INTS, "FLOAT": _FLOATS, "NAME": _NAMES, "ADD_OP": _OPERATORS, "MUL_OP": _OPERATORS,
                   "POW_OP": _OPERATORS, "COMP_OP": _OPERATORS}
        candidates = [t for t in tokens if t.type in by_type]
        if candidates:
            tok = rng.choice(candidates)
            pool = by_type[tok.type]
            if tok.type == "NAME" and rng.random() < 0.5:
                pool = sorted({str(t) for t in tokens if t.type == "NAME"})
            return text[: tok.start_pos] + rng.choice(pool) + text[tok.end_pos:]
    if kind == 4 and len(lines) > 2:
        i = rng.randrange(1, len(lines))
        lines.insert(i, "  " + rng.choice(_HOSTILE_STATEMENTS))
        return "\n".join(lines) + "\n"
    if kind == 5 and len(lines) > 2:
        i = rng.randrange(len(lines))
        lines.insert(rng.randrange(len(lines)), lines[i])
        return "\n".join(lines) + "\n"
    if kind == 6 and len(lines) > 2:
        i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
        return "\n".join(lines) + "\n"
    if tokens:                         # wrap an expression-ish token in deep parentheses, or drop a token
        tok = rng.choice(tokens)
        if rng.random() < 0.5:
            depth = rng.choice([1, 50, 250])
            return text[: tok.start_pos] + "(" * depth + str(tok) + ")" * depth + text[tok.end_pos:]
        return text[: tok.start_pos] + text[tok.end_pos:]
    return text[: rng.randrange(len(text) + 1)]


# ----------------------------------------------------------------------------- running inputs
class CpuTimeExceeded(Exception):
    pass


def _on_cpu_limit(signum, frame):
    raise CpuTimeExceeded()


def cpu_bounded(function, *args, seconds: float = CPU_BOUND_S):
    """Run `function(*args)`; CpuTimeExceeded when it uses more than `seconds` of CPU time."""
    previous = signal.signal(signal.SIGPROF, _on_cpu_limit)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        return function(*args)
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)


def import_generated(text: str, folder: Path):
    """Import generated source as a fresh module (what `from generated.x import M` does), with
    the runtime module it imports beside it; nothing of it stays on disk or in sys.modules."""
    from tests.helpers import import_generated_text
    package = folder / f"dlc_fuzz_{next(_modules)}"
    try:
        return import_generated_text(text, package, "net")
    finally:
        for name in [name for name in sys.modules if name.startswith(f"{package.name}_")]:
            del sys.modules[name]
        shutil.rmtree(package, ignore_errors=True)


def run_mutant(path: Path, level: int, folder: Path) -> str | None:
    """None when dlc behaved on a mutant: diagnostics, or a module that imports."""
    try:
        result = cpu_bounded(compile_spec, path, level)
    except CpuTimeExceeded:
        return "hang: more than the CPU-time bound"
    except Exception as exc:
        return f"internal: {type(exc).__name__}: {exc}"
    internal = [d.message for d in result.diagnostics if d.code == "DLC000"]
    if internal:
        return f"internal: {internal[0]}"
    if result.text is None:
        return None if any(d.is_error for d in result.diagnostics) else "no output and no error"
    try:
        import_generated(result.text, folder)
    except Exception as exc:
        return f"import: {type(exc).__name__}: {exc}"
    return None


def run_valid(text: str, folder: Path, seed: int) -> str | None:
    """None when a random valid spec compiles at -O0/-O1/-O2 and the three agree numerically."""
    import torch
    path = folder / "net.dl"
    path.write_text(text)
    modules = []
    for level in (0, 1, 2):
        try:
            result = cpu_bounded(compile_spec, path, level)
        except CpuTimeExceeded:
            return f"hang at -O{level}"
        if result.text is None:
            return f"-O{level} rejected a valid spec: {[d.message for d in result.diagnostics][:2]}"
        try:
            modules.append(import_generated(result.text, folder))
        except Exception as exc:
            return f"import at -O{level}: {type(exc).__name__}: {exc}"
    torch.manual_seed(seed)
    x = torch.randn(2, 3, _width(text))
    try:
        reference = modules[0].Net().eval()
        with torch.no_grad():
            expected = reference(x)
    except Exception as exc:         # generated code that does not run is a finding, not a crash
        return f"run at -O0: {type(exc).__name__}: {exc}"
    for level, module in ((1, modules[1]), (2, modules[2])):
        try:
            model = module.Net().eval()
            loaded = model.load_state_dict(reference.state_dict(), strict=False)
            if loaded.missing_keys:
                return f"-O{level} missing keys {loaded.missing_keys[:3]}"
            with torch.no_grad():
                got = model(x)
        except Exception as exc:
            return f"run at -O{level}: {type(exc).__name__}: {exc}"
        # equal_nan: a random model may overflow, and then must overflow the same way at every level
        if not torch.allclose(got, expected, atol=1e-5, rtol=1e-4, equal_nan=True):
            return f"numeric difference at -O{level}: {(got - expected).abs().max().item():.3g}"
    return None


def _width(text: str) -> int:
    return int(re.search(r"model Net\(d: int = (\d+)", text).group(1))
