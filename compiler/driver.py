"""The pipeline, end to end, as the CLI and the tests call it.

    text --parse--> AST --resolve--> IR --infer--> typed IR --passes--> IR --codegen--> Python

The stages are imported inside the functions that run them, not here: `dlc check`
answered from the cache needs none of them, and a check never loads the code generator
(jinja2) or the passes.  Together that is most of a cold `dlc check`'s time.
"""
from __future__ import annotations

import gc
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from compiler import __version__
from compiler.diagnostics import CompileError, Diagnostic
from compiler.diagnostics.codes import IMPORT_ERROR, INTERNAL_ERROR

if TYPE_CHECKING:
    from compiler.ir import Program
    from compiler.passes import Pass


@dataclass
class Result:
    spec: Path
    program: Program | None = None
    diagnostics: list[Diagnostic] = field(default_factory=list)
    text: str | None = None
    log: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(d.is_error for d in self.diagnostics)


# The cyclic collector's thresholds while dlc works (mypy's): a first generation of 200,000
# allocations, then 30 and 30.  compiler.cli.run() keeps them for a whole `dlc` process.
COLLECTOR_THRESHOLDS = (200_000, 30, 30)


@contextmanager
def _rare_collections():
    """The compiler builds large, mostly acyclic object graphs (ASTs, IR, shapes), which the cyclic
    collector rescans at its default thresholds: its full scans grow with the heap, so a 10,000-node
    spec checked 8x slower than a 2,500-node one, not 4x.  A higher first threshold, as mypy's main
    sets, keeps memory bounded and the scans rare; the caller's thresholds come back afterwards
    (the language server runs checks in a long-lived process)."""
    before = gc.get_threshold()
    gc.set_threshold(*(max(mine, theirs) for mine, theirs in zip(COLLECTOR_THRESHOLDS, before)))
    try:
        yield
    finally:
        gc.set_threshold(*before)


def check(spec: Path, overrides: dict[str, Any] | None = None, all_blocks: bool = False,
          tp: int | None = None, sources: dict[Path, str] | None = None) -> Result:
    """Parse, resolve and type a spec; writes nothing.  `all_blocks` also checks
    library blocks whose parameters all have defaults; `tp` checks that every model
    shards `tp` ways (head counts and sharded widths divide); `sources` holds text to
    read instead of files (resolved path -> text: the language server's open documents)."""
    with _rare_collections():
        return _check(spec, overrides, all_blocks, tp, sources)


def _check(spec: Path, overrides: dict[str, Any] | None, all_blocks: bool, tp: int | None,
           sources: dict[Path, str] | None) -> Result:
    from compiler.check.decoding import check_decoding
    from compiler.check.shapes import infer_program
    from compiler.check.init import check_init_rules
    from compiler.check.ties import check_ties
    from compiler.codegen.names import name_diagnostics, output_module_diagnostic
    from compiler.elaborate.resolve import resolve_file
    result = Result(spec)
    # resolve: imports, parameters, static branches, repeat -> one graph per block specialization
    program, result.diagnostics = resolve_file(spec, overrides, all_blocks=all_blocks, sources=sources)
    if program is None:
        return result
    # infer: symbolic shapes and dtypes, checked at every op and block boundary.  Blocks that failed
    # to resolve have no graph, so the errors found here are independent of those already reported.
    result.diagnostics += infer_program(program)
    # ties: shared parameters must exist and agree in shape
    if result.ok:
        result.diagnostics += check_ties(program)
    # init: every `init` statement names an op or a layer's parameter, with a scheme that fits it
    if result.ok:
        result.diagnostics += check_init_rules(program)
    # decoding: a model that asks for generate() has a decoder step, logits and token ids to feed
    if result.ok:
        result.diagnostics += check_decoding(program)
    # tensor parallelism: every sharded head count and width divides by the degree asked for
    if result.ok and tp:
        from compiler.check.parallel import check_tensor_parallel
        result.diagnostics += check_tensor_parallel(program, tp)
    # names: every class and layer name must be usable in Python, so check and compile agree
    result.diagnostics += name_diagnostics(program)
    if program.models:      # a file with a model becomes a module: its name must be importable
        result.diagnostics += filter(None, [output_module_diagnostic(program.source, spec.stem)])
    result.program = program
    result.diagnostics = _in_user_code(result.diagnostics, spec)
    return result


def _in_user_code(diagnostics: list[Diagnostic], spec: Path) -> list[Diagnostic]:
    """Errors raised inside library blocks are shown where the user's spec uses them (unless
    the spec being checked is itself in the library)."""
    if not diagnostics:          # most checks: no folder to resolve
        return diagnostics
    from compiler.diagnostics.frames import relocate_all
    from compiler.elaborate.search_path import search_path
    own = spec.resolve().parent
    libraries = [folder for folder in search_path() if own != folder.resolve()]
    return relocate_all(diagnostics, libraries)


def compile_spec(spec: Path, opt_level: int = 1, enable: list[str] = (), disable: list[str] = (),
                 overrides: dict[str, Any] | None = None, passes: list[Pass] | None = None,
                 inference: bool = False, standalone: bool = False) -> Result:
    """Check, optimize and generate; `result.text` is the Python module on success.  `inference`
    admits the passes that are only correct for a model that never trains (drop-dropout).  The
    module imports the runtime helpers it uses from dlc_runtime (codegen/runtime_module.py), or
    with `standalone` holds them itself."""
    with _rare_collections():
        return _compile_spec(spec, opt_level, enable, disable, overrides, passes, inference, standalone)


def _compile_spec(spec: Path, opt_level: int, enable: list[str], disable: list[str],
                  overrides: dict[str, Any] | None, passes: list[Pass] | None, inference: bool,
                  standalone: bool) -> Result:
    from compiler.codegen import generate
    from compiler.ir import entry_program
    from compiler.passes import optimize, select_passes
    result = check(spec, overrides)
    if not result.ok or result.program is None:
        return result
    chosen = passes if passes is not None else select_passes(opt_level, list(enable), list(disable), inference)
    # entry program: drop unused specializations, settle class names before passes report on them
    optimized, result.log = optimize(entry_program(result.program), chosen)
    header = header_options(opt_level, list(enable), list(disable), overrides, inference, standalone)
    show = project_paths(spec)

    def generated(program: Program) -> tuple[str, list[str]]:
        notes: list[str] = []
        return generate(program, __version__, notes, header, show, standalone), notes
    try:
        # The other values of the models' flags, each kept where its classes merge with the others.
        # A block's specializations that merge into one class still merge with fewer of them, so
        # when all the branches together make no note (no block split into classes), the model alone
        # makes none either, and one at a time would have kept each and made the same text: one
        # generate instead of one per branch plus one (T5 and Llama have 2-3 branches; each generate
        # is most of a compile).  Otherwise the model alone, then each branch where it adds no note.
        branches = other_branches(spec, result.program, overrides or {}, chosen)
        result.text = _all_at_once(generated, optimized, branches)
        if result.text is None:
            result.text, notes = generated(optimized)
            for branch in branches:
                trial = _with_branches(optimized, [branch])
                text, trial_notes = generated(trial)
                if trial_notes == notes:
                    optimized, result.text = trial, text
            result.log += notes
    except CompileError as exc:
        result.diagnostics += exc.diagnostics
    return result


def _all_at_once(generated, program: Program, branches: list[dict]) -> str | None:
    """The module with every branch, when they all merge (no note); else None, and the caller goes
    one branch at a time (which also reports any error as it always did)."""
    if not branches:
        return None
    try:
        text, notes = generated(_with_branches(program, branches))
    except CompileError:
        return None
    return None if notes else text


def _with_branches(program: Program, branches: list[dict]) -> Program:
    return replace(program, graphs={**program.graphs, **{k: g for branch in branches for k, g in branch.items()}})


# Diagnostics that depend on more than the key covers are never cached: an unreadable import
# (file permissions) and dlc's own internal errors.
_UNCACHED_CODES = {INTERNAL_ERROR, IMPORT_ERROR}


def check_diagnostics(spec: Path, overrides: dict[str, Any] | None = None, all_blocks: bool = False,
                      tp: int | None = None) -> list[Diagnostic]:
    """`check(spec, ...).diagnostics`, answered from the check cache when nothing it depends on
    changed (see compiler/check_cache.py; `DLC_NO_CACHE=1` turns it off): check_many of one spec."""
    return check_many([CheckRequest(spec, dict(overrides or {}), all_blocks, tp)], jobs=1)[0]


@dataclass
class CheckRequest:
    """One spec to check, with its options, and once looked up, the cache keys its answer goes under."""
    spec: Path
    overrides: dict[str, Any]
    all_blocks: bool = False
    tp: int | None = None
    keys: tuple[str, str] | None = None     # (clean key, full key); None: the answer is not stored


def cached_diagnostics(request: CheckRequest, folders: dict[str, str] | None = None) -> list[Diagnostic] | None:
    """The stored answer for `request`, or None when it must be checked (its keys are then set on
    it, for checked_diagnostics to store the answer under)."""
    from compiler import disk_cache
    if disk_cache.cache_dir() is None:      # no cache: no key to compute (it reads every import folder)
        return None
    from compiler import check_cache
    spec, overrides, all_blocks, tp = request.spec, request.overrides, request.all_blocks, request.tp
    try:
        clean = check_cache.clean_key(spec, overrides, all_blocks, tp)
        if check_cache.checked_clean(clean):      # clean before, and none of its files changed
            return []
        key = check_cache.check_key(spec, overrides, all_blocks, tp, folders)
    except OSError:  # the spec or a folder is unreadable: let the pipeline report it
        return None
    request.keys = (clean, key)
    return check_cache.load(key)


def checked_diagnostics(request: CheckRequest) -> list[Diagnostic]:
    """Check `request` and store the answer under the keys cached_diagnostics set (if any)."""
    diagnostics = check(request.spec, request.overrides, request.all_blocks, request.tp).diagnostics
    if request.keys is None:
        return diagnostics
    from compiler import check_cache
    clean, key = request.keys
    # A clean answer is kept with the files it depends on (a narrower key: check_cache.clean_key);
    # any other answer under the key of every file its hints may have read.
    if diagnostics or not check_cache.store_clean(clean, request.spec):
        if not any(d.code in _UNCACHED_CODES for d in diagnostics):
            check_cache.store(key, diagnostics)
    return diagnostics


def check_many(requests: list[CheckRequest], jobs: int | None = None) -> list[list[Diagnostic]]:
    """The diagnostics of each request, in order: answers from the cache first, then the specs
    that need checking, shared among `jobs` processes (default: one per CPU, see
    compiler/workers.py).  Every answer is what check_diagnostics gives for that request alone."""
    from compiler.workers import default_jobs, map_in_workers
    folders: dict[str, str] = {}    # each import folder is fingerprinted once for all the specs
    answers = [cached_diagnostics(request, folders) for request in requests]
    missing = [request for request, answer in zip(requests, answers) if answer is None]
    checked = iter(map_in_workers(checked_diagnostics, missing, jobs or default_jobs(len(missing))))
    return [answer if answer is not None else next(checked) for answer in answers]


def other_branches(spec: Path, program: Program, overrides: dict[str, Any], passes: list[Pass]) -> list[dict]:
    """The models once more with each other value of their flag and choice parameters
    (`tie_embeddings=false`, `cell="gru"`), where that configuration checks: the generated class
    then builds those branches too, instead of refusing them.  Configurations that do not check
    are left out, silently: the constructor refuses them, as any branch never compiled."""
    from compiler.ir import entry_program
    from compiler.ir.graph import renamed
    from compiler.passes import optimize
    found: list[dict] = []
    for public, key in program.models:
        graph = program.graphs[key]
        if public != graph.block:
            continue                      # variants fix their parameters
        for param in graph.definition.params:
            for value in _alternatives(param, graph.params.get(param.name)):
                if any(g.block == graph.block and g.params == {**graph.params, param.name: value}
                       for g in program.graphs.values()):
                    continue
                probe = check(spec, {**overrides, param.name: value})
                if not probe.ok or probe.program is None:
                    continue
                entry = [(p, k) for p, k in probe.program.models if p == public]
                optimized, _ = optimize(entry_program(replace(probe.program, models=entry)), passes)
                tag = f"@{param.name}={value}"
                names = {k: k + tag for k in optimized.graphs}
                found.append({names[k]: renamed(g, names) for k, g in optimized.graphs.items()})
    return found


def _alternatives(param, value: Any) -> list[Any]:
    if param.type.kind == "bool":
        return [not value]
    if param.type.kind == "enum":
        return [option for option in param.type.options if option != value]
    return []


def project_root(spec: Path) -> Path:
    """The project a spec belongs to: the nearest folder above it with a pyproject.toml or .git
    (else the spec's own folder)."""
    spec = spec.resolve()
    for folder in spec.parents:
        if (folder / "pyproject.toml").exists() or (folder / ".git").exists():
            return folder
    return spec.parent


def project_paths(spec: Path):
    """How generated files write spec paths: relative to the spec's project, bundled stdlib files
    as `<stdlib>/vision.dl`, so the output does not depend on the working directory or checkout."""
    from compiler.elaborate.loader import STDLIB
    root = project_root(spec)
    stdlib = STDLIB.resolve()
    shown: dict[str, str] = {}      # a compile shows the same few files hundreds of times (a resolve each)

    def show(file: str) -> str:
        if file not in shown:
            shown[file] = _shown(Path(file).resolve(), stdlib, root)
        return shown[file]
    return show


def _shown(path: Path, stdlib: Path, root: Path) -> str:
    for base, prefix in ((stdlib, "<stdlib>/"), (root, "")):
        try:
            return prefix + path.relative_to(base).as_posix()
        except ValueError:
            continue
    return path.as_posix()


def header_options(opt_level: int, enable: list[str], disable: list[str], overrides: dict[str, Any] | None,
                   inference: bool, standalone: bool = False) -> str:
    """How the file was compiled, for its header: ` (-O1 -D layers=2)`."""
    parts = [f"-O{opt_level}", *(["--inference"] if inference else []), *(["--standalone"] if standalone else [])]
    parts += [f"--passes {','.join(enable)}"] if enable else []
    parts += [f"--no-pass {name}" for name in disable]
    parts += [f"-D {k}={_option_value(v)}" for k, v in sorted((overrides or {}).items())]
    return " (" + " ".join(parts) + ")"


def _option_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def output_path(spec: Path, out_dir: Path) -> Path:
    return out_dir / f"{spec.stem}.py"


def write_if_changed(path: Path, text: str) -> bool:
    """Atomically replace `path` with `text`; untouched when the content is the same.
    (The CLI writes through compiler.outputs, which makes a set of outputs one transaction.)"""
    from compiler.outputs import Output, write_outputs
    return bool(write_outputs([Output(path, path, text)], path.parent))
