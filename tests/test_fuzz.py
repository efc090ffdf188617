"""The whole compiler never crashes: a corpus of inputs that once did, and
bounded fuzzing of the complete pipeline (parse, resolve, infer, passes, codegen)
over mutated stdlib specs.  Every input ends in success or diagnostics."""
from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compiler.driver import compile_spec
from tests.fuzzing import mutate_tokens, random_valid_spec, run_mutant, run_valid
from tests.helpers import ROOT
from tests.fast_lane import examples

CORPUS = Path(__file__).parent / "fuzz_corpus"
SPECS = sorted((ROOT / "specs").glob("*.dl")) + sorted((ROOT / "stdlib").glob("*.dl"))
TIME_BOUND_S = 10.0


def _compile_never_crashes(path: Path) -> None:
    start = time.perf_counter()
    result = compile_spec(path, opt_level=2)       # raises on any internal error
    elapsed = time.perf_counter() - start
    assert elapsed < TIME_BOUND_S, f"{path.name} took {elapsed:.1f}s"
    if result.ok and result.program and result.program.models:
        assert result.text is not None
        compile(result.text, str(path), "exec")    # what it generates is valid Python
    assert result.ok or any(d.is_error for d in result.diagnostics)
    assert all(d.code != "DLC000" for d in result.diagnostics), [d.message for d in result.diagnostics]


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.dl")), ids=lambda p: p.stem)
def test_corpus_input_gets_a_result_not_a_crash(path):
    _compile_never_crashes(path)


def _mutate(text: str, rng: random.Random) -> str:
    """One of the edits that broke things before: byte flips, truncation, token
    deletion or duplication, line swaps, injected brackets or numbers."""
    tokens = text.split(" ")
    kind = rng.randrange(7)
    if kind == 0 and text:
        i = rng.randrange(len(text))
        return text[:i] + chr(rng.randrange(32, 127)) + text[i + 1:]
    if kind == 1:
        return text[: rng.randrange(len(text) + 1)]
    if kind == 2 and len(tokens) > 1:
        del tokens[rng.randrange(len(tokens))]
        return " ".join(tokens)
    if kind == 3 and tokens:
        i = rng.randrange(len(tokens))
        tokens.insert(i, tokens[i])
        return " ".join(tokens)
    if kind == 4:
        lines = text.splitlines()
        if len(lines) > 2:
            i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        return "\n".join(lines)
    if kind == 5:
        i = rng.randrange(len(text) + 1)
        return text[:i] + rng.choice(["(", ")", "[", "]", "{", "}", "0", "-1", "99999999", ",", "none"]) + text[i:]
    return text.replace(rng.choice(["512", "768", "64", "2", "true", "0.1"]), rng.choice(["0", "3", "-1", "1e9"]), 1)


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), which=st.sampled_from(SPECS), edits=st.integers(1, 3))
def test_mutated_real_specs_compile_or_diagnose(tmp_path, seed, which, edits):
    rng = random.Random(seed)
    text = which.read_text()
    for _ in range(edits):
        text = _mutate(text, rng)
    # Imports resolve next to the spec first, so keep the mutant beside the original's neighbours.
    path = tmp_path / which.name
    path.write_text(text)
    for sibling in which.parent.glob("*.dl"):
        if sibling.name != which.name and not (tmp_path / sibling.name).exists():
            (tmp_path / sibling.name).write_text(sibling.read_text())
    _compile_never_crashes(path)


def test_exponentially_nested_imports_stay_linear(tmp_path):
    """Each of 40 levels imports both modules of the next: 2**40 import paths, 80 files,
    each parsed once."""
    levels = 40
    for level in range(levels):
        for side in "ab":
            imports = f"import m{level + 1}a, m{level + 1}b\n" if level + 1 < levels else ""
            block = f"block B{level}{side}(d: int = 2) {{\n  in x: [N, d]\n  out x\n}}\n"
            (tmp_path / f"m{level}{side}.dl").write_text(imports + block)
    (tmp_path / "top.dl").write_text("import m0a, m0b\nmodel M(d: int = 2) {\n  in x: [N, d]\n"
                                     "  out y = B39a(d)(x)\n}\n")
    start = time.perf_counter()
    result = compile_spec(tmp_path / "top.dl")
    assert time.perf_counter() - start < TIME_BOUND_S
    # Imports are not transitive: B39a is not in top.dl's scope, and that is the one diagnostic.
    assert [d.code for d in result.diagnostics] == ["DLC004"]


# ---------------------------------------------------------------------- a bounded campaign in CI
# scripts/fuzz.py runs the same two populations at length (README: robustness).
@pytest.mark.parametrize("seed", range(40))
def test_token_mutants_end_in_diagnostics_or_a_module_that_imports(tmp_path, seed):
    rng = random.Random(seed)
    which = SPECS[seed % len(SPECS)]
    text = which.read_text() if seed % 3 else random_valid_spec(rng)
    for _ in range(rng.randint(1, 3)):
        text = mutate_tokens(text, rng)
    for sibling in SPECS:
        (tmp_path / sibling.name).write_text(sibling.read_text())
    path = tmp_path / f"mutant_{which.name}"
    path.write_text(text)
    assert run_mutant(path, seed % 3, tmp_path) is None, text


@pytest.mark.parametrize("seed", range(4))
def test_random_valid_specs_compile_and_agree_across_levels(tmp_path, seed):
    text = random_valid_spec(random.Random(seed))
    assert run_valid(text, tmp_path, seed) is None, text


def test_the_token_mutator_keeps_close_to_the_language():
    """Most single edits still lex: the mutator explores the language, not byte noise."""
    from tests.fuzzing import _tokens
    rng = random.Random(0)
    texts = [mutate_tokens(SPECS[i % len(SPECS)].read_text(), rng) for i in range(100)]
    assert sum(bool(_tokens(t)) for t in texts) >= 80
    assert len(set(texts)) >= 90


@pytest.mark.parametrize("path", sorted(CORPUS.glob("valid_*.dl")), ids=lambda p: p.stem)
def test_corpus_valid_models_run_and_agree_across_levels(tmp_path, path):
    """Campaign findings in generated code (a module that imports but does not run, or -O
    levels that disagree): each model runs at -O0, -O1 and -O2 with equal outputs."""
    assert run_valid(path.read_text(), tmp_path, 0) is None
