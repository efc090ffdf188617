"""The `dlc check` cache: an unchanged spec is answered without parsing or checking anything.

An entry (in compiler/disk_cache.py's store, namespace `check`) holds the diagnostics
that checking a spec produced, as JSON.  Its key covers everything the answer depends on:

- the compiler itself (disk_cache.compiler_fingerprint);
- the spec path as given, the working directory (diagnostics print paths relative
  to it), the overrides, `all_blocks`, `--tp` and the spec's content;
- every `.dl` file a spec could import, by name and content: the files of the
  spec's own folder, of each `DLC_PATH` folder and of the bundled stdlib.  That is
  wider than the modules the spec actually imports, on purpose: a new file that
  would shadow a stdlib module, or a new name a "did you mean" hint could offer,
  changes the key too.

A clean answer (no diagnostic) depends on less, and is kept under a narrower key (`clean_key`,
below): the spec, the modules it imports and the absence of files that would shadow them.  So
editing one spec re-checks that spec only, not every spec of its folder (with the wide key alone,
an edit anywhere in specs/ or stdlib/ invalidated the answers of every spec there).

A cache hit imports nothing beyond the standard library and `compiler.diagnostics`.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from compiler import disk_cache
from compiler.diagnostics import Diagnostic, Note, Severity, Span
from compiler.elaborate.search_path import import_folders, search_path

SCHEMA = 1


def _folder_fingerprint(folder: str) -> str:
    """Names and contents of the `.dl` files directly in `folder`.  Not memoized here: a long-lived
    process (an editor's, a test's) must see files change.  One `dlc check` of many specs reads each
    folder once (`check_key`'s `folders`): 28 specs each hashing their own folder and the stdlib
    were a tenth of `dlc check specs stdlib`."""
    digest = hashlib.sha256()
    path = Path(folder)
    if path.is_dir():
        for spec in sorted(path.glob("*.dl")):
            try:
                digest.update(spec.name.encode() + b"\0" + spec.read_bytes() + b"\0")
            except OSError:
                digest.update(spec.name.encode() + b"\0<unreadable>\0")
    return digest.hexdigest()


def check_key(spec: Path, overrides: dict[str, Any], all_blocks: bool, tp: int | None = None,
              folders: dict[str, str] | None = None) -> str:
    """The key of `dlc check`'s answer for `spec`: see the module docstring for what it covers.
    `folders` (resolved folder -> fingerprint) shares the folders' fingerprints between the specs
    of one command; pass a fresh dict for each command, so every command sees the files as they are."""
    folders = {} if folders is None else folders
    parts = _spec_parts(spec, overrides, all_blocks, tp)
    # every folder an import in `spec` or in a module it imports could be found in (a stdlib
    # module's own folder is the stdlib, already among them)
    for folder in import_folders(spec.resolve()):
        where = str(folder.resolve())
        if where not in folders:
            folders[where] = _folder_fingerprint(where)
        parts.append(f"folder {folder}={folders[where]}")
    return disk_cache.key_of(*parts)


def _spec_parts(spec: Path, overrides: dict[str, Any], all_blocks: bool, tp: int | None) -> list[str]:
    return [f"schema={SCHEMA}", f"cwd={Path.cwd().resolve()}", f"spec={spec}", f"resolved={spec.resolve()}",
            f"overrides={sorted(overrides.items())!r}", f"all_blocks={all_blocks}", f"tp={tp}",
            f"spec_text={hashlib.sha256(spec.read_bytes()).hexdigest()}"]


# ---------------------------------------------------------------------- clean answers, by their files
# A spec that checks clean (no diagnostic at all) depends on fewer files than check_key covers: its
# own text, the modules it imports (transitively), and, for each import, the absence of the file of
# that name in every folder searched before the one it was found in (a new file there would shadow
# it).  Hints, which read whole folders (a "did you mean", the stdlib module defining a block), come
# only with diagnostics.  So a clean answer is stored under `clean_key` instead, with that list, and
# found again while those files are unchanged (whenever check_key would still find it, so would
# this): editing one spec then re-checks that spec, not every spec of its folder (and editing a
# stdlib module, only the specs that import it).
def clean_key(spec: Path, overrides: dict[str, Any], all_blocks: bool, tp: int | None = None) -> str:
    """The key of `spec`'s clean answer: check_key's parts without the folders, with the search path."""
    parts = _spec_parts(spec, overrides, all_blocks, tp)
    return disk_cache.key_of("clean", *parts, f"search={[str(f.resolve()) for f in search_path()]}")


def _digest(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def checked_clean(key: str) -> bool:
    """Whether the entry under `key` says the spec checked clean and none of its files changed."""
    data = _entry(key)
    if data is None:
        return False
    try:
        return (all(_digest(path) == digest for path, digest in data["files"])
                and not any(os.path.isfile(path) for path in data["absent"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def store_clean(key: str, spec: Path) -> bool:
    """Record that `spec` checked clean, with the files that answer depends on (see above); False
    when those files could not be worked out (the caller then keeps the answer under check_key)."""
    from compiler.diagnostics import CompileError
    from compiler.elaborate.loader import Loader
    loader = Loader()
    try:
        loader.load(spec)                   # parses nothing again: the parser keeps this process's ASTs
    except CompileError:
        return False
    if loader.diagnostics:
        return False
    own = spec.resolve()
    try:
        files = [[str(path), _digest(str(path))] for path in loader.modules if path != own]
    except OSError:
        return False
    absent = [path for module in loader.modules.values() for path in _shadowing_candidates(module)]
    data = {"schema": SCHEMA, "key": key, "files": files, "absent": absent}
    disk_cache.store("check", key, json.dumps(data).encode())
    return True


def _shadowing_candidates(module) -> list[str]:
    """For each import of a loaded module, the files searched before the one found: the same order
    as the loader's search (compiler/elaborate/loader.py, Loader._find; a test checks they agree)."""
    found = []
    for imp in module.tree.imports:
        for name, _ in imp.names:
            for folder in import_folders(module.path):
                candidate = folder / f"{name}.dl"
                if candidate.is_file():
                    break
                found.append(os.path.abspath(candidate))
    return found


# ---------------------------------------------------------------------- (de)serialization
def _span_json(span: Span) -> list:
    return [span.file, span.line, span.col, span.end_line, span.end_col]


def _diagnostic_json(d: Diagnostic) -> dict:
    return {"code": d.code, "message": d.message, "span": _span_json(d.span), "severity": d.severity.value,
            "notes": [[_span_json(n.span), n.message] for n in d.notes], "hint": d.hint}


def _diagnostic(data: dict) -> Diagnostic:
    notes = tuple(Note(Span(*span), message) for span, message in data["notes"])
    return Diagnostic(data["code"], data["message"], Span(*data["span"]), Severity(data["severity"]), notes,
                      data["hint"])


# ---------------------------------------------------------------------- lookup and store
def _entry(key: str) -> dict | None:
    """The stored entry under `key` when it is one of this schema's for this key, else None
    (missing, disabled, unreadable, corrupt, or another version's)."""
    payload = disk_cache.load("check", key)
    if payload is None:
        return None
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA or data.get("key") != key:
        return None
    return data


def load(key: str) -> list[Diagnostic] | None:
    """The cached diagnostics under `key`, or None (missing, disabled, unreadable or corrupt)."""
    data = _entry(key)
    if data is None:
        return None
    try:
        return [_diagnostic(d) for d in data["diagnostics"]]
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def store(key: str, diagnostics: list[Diagnostic]) -> None:
    """Save `diagnostics` under `key` (skipped when the cache is disabled or unwritable)."""
    data = {"schema": SCHEMA, "key": key, "diagnostics": [_diagnostic_json(d) for d in diagnostics]}
    disk_cache.store("check", key, json.dumps(data).encode())
