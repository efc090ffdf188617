"""A small content-addressed store on disk, for results that are expensive to recompute and
cheap to reload: parsed modules (compiler/syntax/parser.py), `dlc check` answers
(compiler/check_cache.py) and lark's parser tables.

Like `diagnostics`, this is a base module that every stage may use; it imports only the
standard library.

- Where: `$DLC_CACHE_DIR`, else `$XDG_CACHE_HOME/dlc`, else `~/.cache/dlc`.
  `DLC_NO_CACHE=1` turns every cache off.
- Keys are sha256 hex digests that already cover everything the value depends on,
  including the compiler's own source (`compiler_fingerprint`): editing dlc
  invalidates every entry, with no version number to forget to bump.
- Concurrent writers: a value is written to a temporary file in the same folder (named after
  the key, the process and the thread) and renamed into place, so a reader sees a whole entry or none; two writers of one key
  wrote the same bytes, and the last rename wins.
- Corruption: each entry starts with the sha256 of its payload, checked on every read;
  a bad entry reads as missing (and is overwritten by the next store).
- Size: each namespace keeps about MAX_ENTRIES files (checked on a process's first store and
  every PRUNE_EVERY stores after); past that, the oldest half goes.
"""
from __future__ import annotations

import os
import sys
import _thread
from functools import lru_cache
from pathlib import Path

MAX_ENTRIES = 2000
_PACKAGE = Path(__file__).resolve().parent
_DIGEST = 32  # bytes of sha256 in front of each payload


def _sha256(data: bytes):
    # hashlib is imported on first use: loading it (OpenSSL) costs a check run without a cache
    # (DLC_NO_CACHE=1), which never hashes, as much as parsing a spec
    import hashlib
    return hashlib.sha256(data)


def cache_dir() -> Path | None:
    """The cache's root folder, or None when caching is disabled."""
    if os.environ.get("DLC_NO_CACHE", "") not in ("", "0"):
        return None
    explicit = os.environ.get("DLC_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "dlc"


@lru_cache(maxsize=1)
def compiler_fingerprint() -> str:
    """A hash of the compiler's own files (Python source and grammar) and the Python version."""
    digest = _sha256(repr(sys.version_info[:3]).encode())
    for name in _source_files():
        with open(os.path.join(_PACKAGE, name), "rb") as handle:
            digest.update(name.encode() + b"\0" + handle.read() + b"\0")
    return digest.hexdigest()


def _source_files() -> list[str]:
    """The package's .py and .lark files, as sorted relative posix paths.  os.walk, skipping the
    bytecode folders: Path.rglob took half of the fingerprint's time on a cache hit."""
    found = []
    for folder, subfolders, files in os.walk(_PACKAGE):
        subfolders[:] = [d for d in subfolders if d != "__pycache__"]
        relative = os.path.relpath(folder, _PACKAGE).replace(os.sep, "/")
        found += [name if relative == "." else f"{relative}/{name}" for name in files
                  if name.endswith((".py", ".lark"))]
    return sorted(found)


def key_of(*parts: str | bytes) -> str:
    """A key over the compiler fingerprint and `parts` (kept apart by separators)."""
    digest = _sha256(compiler_fingerprint().encode())
    for part in parts:
        digest.update(b"\0" + (part if isinstance(part, bytes) else part.encode()))
    return digest.hexdigest()


def namespace(name: str) -> Path | None:
    """The folder of one kind of entry (`ast`, `check`, ...), or None when caching is disabled."""
    root = cache_dir()
    return None if root is None else root / name


def load(kind: str, key: str) -> bytes | None:
    """The payload stored under `key`, or None: missing, disabled, unreadable or corrupt."""
    folder = namespace(kind)
    if folder is None:
        return None
    try:
        data = (folder / key).read_bytes()
    except OSError:
        return None
    payload = data[_DIGEST:]
    return payload if len(data) >= _DIGEST and _sha256(payload).digest() == data[:_DIGEST] else None


def store(kind: str, key: str, payload: bytes) -> None:
    """Save `payload` under `key`; a cache that cannot be written is skipped without a word."""
    folder = namespace(kind)
    if folder is None:
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # A temporary name of this process and thread, created afresh (a leftover of a crashed
        # process of the same id is overwritten): tempfile.mkstemp cost more than the write.
        tmp = folder / f".{key[:16]}.{os.getpid()}.{_thread.get_ident()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)   # as mkstemp made it
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(_sha256(payload).digest() + payload)
            os.replace(tmp, folder / key)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _prune_now_and_then(folder)
    except OSError:
        pass


_STORES: dict[Path, int] = {}     # stores made by this process, per folder
PRUNE_EVERY = 100


def _prune_now_and_then(folder: Path) -> None:
    """Prune on a process's first store into `folder`, then every PRUNE_EVERY stores: listing a
    full folder (MAX_ENTRIES files) after each of a `dlc check`'s stores cost more than the check."""
    count = _STORES.get(folder, 0)
    _STORES[folder] = count + 1
    if count % PRUNE_EVERY == 0:
        _prune(folder)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _prune(folder: Path) -> None:
    """Past MAX_ENTRIES files, delete the least recently written half."""
    entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
    if len(entries) > MAX_ENTRIES:
        for path in sorted(entries, key=_mtime)[: len(entries) // 2]:
            path.unlink(missing_ok=True)
