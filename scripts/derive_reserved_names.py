"""Write compiler/codegen/nn_module_attributes.txt: every attribute of an nn.Module instance
under the installed torch, merged with those already listed (generated code must run on every
torch it supports, so the list is a union over versions).  The compiler never imports torch:
this script is run once per torch upgrade, and tests/test_names.py fails when it is due.

    .venv/bin/python scripts/derive_reserved_names.py
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from compiler.codegen.names import NN_MODULE_ATTRIBUTES_FILE  # noqa: E402

HEADER = ("# Attributes of a torch.nn.Module instance, which a layer name must not shadow.\n"
          "# Written by scripts/derive_reserved_names.py (union over the torch versions it ran with).\n")


def installed_attributes() -> set[str]:
    from torch import nn
    return set(dir(nn.Module()))


def listed_attributes() -> set[str]:
    if not NN_MODULE_ATTRIBUTES_FILE.exists():
        return set()
    lines = NN_MODULE_ATTRIBUTES_FILE.read_text(encoding="utf-8").splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def main() -> None:
    import torch
    names = listed_attributes() | installed_attributes()
    NN_MODULE_ATTRIBUTES_FILE.write_text(HEADER + f"# last run with torch {torch.__version__}\n"
                                         + "".join(f"{n}\n" for n in sorted(names)), encoding="utf-8")
    print(f"{len(names)} names in {NN_MODULE_ATTRIBUTES_FILE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
