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

A cache hit imports nothing beyond the standard library and `compiler.diagnostics`.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from compiler import disk_cache
from compiler.diagnostics import Diagnostic, Note, Severity, Span
from compiler.elaborate.search_path import search_path

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


def _import_folders(spec: Path) -> list[Path]:
    """Every folder an import in `spec` or in a module it imports could be found in."""
    return [spec.resolve().parent, *search_path()]


def check_key(spec: Path, overrides: dict[str, Any], all_blocks: bool, tp: int | None = None,
              folders: dict[str, str] | None = None) -> str:
    """The key of `dlc check`'s answer for `spec`: see the module docstring for what it covers.
    `folders` (resolved folder -> fingerprint) shares the folders' fingerprints between the specs
    of one command; pass a fresh dict for each command, so every command sees the files as they are."""
    folders = {} if folders is None else folders
    parts = [f"schema={SCHEMA}", f"cwd={Path.cwd().resolve()}", f"spec={spec}", f"resolved={spec.resolve()}",
             f"overrides={sorted(overrides.items())!r}", f"all_blocks={all_blocks}", f"tp={tp}",
             f"spec_text={hashlib.sha256(spec.read_bytes()).hexdigest()}"]
    for folder in _import_folders(spec):
        where = str(folder.resolve())
        if where not in folders:
            folders[where] = _folder_fingerprint(where)
        parts.append(f"folder {folder}={folders[where]}")
    return disk_cache.key_of(*parts)


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
def load(key: str) -> list[Diagnostic] | None:
    """The cached diagnostics under `key`, or None (missing, disabled, unreadable or corrupt)."""
    payload = disk_cache.load("check", key)
    if payload is None:
        return None
    try:
        data = json.loads(payload)
        if data.get("schema") != SCHEMA or data.get("key") != key:
            return None
        return [_diagnostic(d) for d in data["diagnostics"]]
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def store(key: str, diagnostics: list[Diagnostic]) -> None:
    """Save `diagnostics` under `key` (skipped when the cache is disabled or unwritable)."""
    data = {"schema": SCHEMA, "key": key, "diagnostics": [_diagnostic_json(d) for d in diagnostics]}
    disk_cache.store("check", key, json.dumps(data).encode())
