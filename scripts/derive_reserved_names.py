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
    """nn.Module's attributes, with those that libraries a model is used beside patch in at run
    time (transformers adds `smart_apply` when one of its models initializes): a layer must
    not shadow them either."""
    from torch import nn
    try:
        from transformers import BertConfig, BertModel
        BertModel(BertConfig(vocab_size=8, hidden_size=4, num_hidden_layers=1, num_attention_heads=1,
                             intermediate_size=4, max_position_embeddings=8))
    except Exception:       # not installed, or unimportable on this build: its names stay out
        pass
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
