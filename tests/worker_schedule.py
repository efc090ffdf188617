"""What each pytest-xdist worker does before its first test, to spend less CPU on work both would repeat.

* Reference libraries on one worker.  The first HuggingFace model class a process touches costs
  ~3 s of CPU (transformers' modeling_utils, which imports torchvision and its models; measured on
  this machine's EPYC: `import transformers` 0.9 s, then `transformers.BertModel` 3.1 s).  Under
  `--dist worksteal` each worker starts on a contiguous half of the collected items and steals from
  the *end* of the other's queue, so putting the modules that use transformers or torchvision first
  keeps them on the first worker: the second imports neither unless it runs out of other work.
  The order within each group stays the collection order (a module's tests stay together).
* A frozen heap.  After collection a worker holds torch, transformers and every test module (~240,000
  objects); each full garbage collection scans them all again, ~0.3 s a time, a dozen times a
  worker.  `gc.freeze()` moves what exists after collection out of the collector's sight.
"""
from __future__ import annotations

import gc
import os
import re
from pathlib import Path

import pytest

# A test module that mentions either library by name (an import, an importorskip, a builder of the
# reference model) runs its reference models in the first worker's share.
_REFERENCE_LIBRARIES = re.compile(r"\b(transformers|torchvision)\b")


def _uses_reference_libraries(path: Path, seen: dict[Path, bool]) -> bool:
    if path not in seen:
        seen[path] = bool(_REFERENCE_LIBRARIES.search(path.read_text(encoding="utf-8")))
    return seen[path]


def order_for_workers(items: list[pytest.Item]) -> None:
    """In an xdist worker, move the items of modules that use the reference libraries to the front
    (a stable sort: every worker computes the same order, which xdist requires)."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return
    seen: dict[Path, bool] = {}
    items.sort(key=lambda item: not _uses_reference_libraries(Path(str(item.path)), seen))


def freeze_collected_heap() -> None:
    """In an xdist worker, collect once and freeze what is left: the imports and the test modules
    live to the end of the run, and the tests' own garbage is still collected as usual."""
    if "PYTEST_XDIST_WORKER" in os.environ:
        gc.collect()
        gc.freeze()
