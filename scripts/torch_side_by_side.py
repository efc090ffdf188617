#!/usr/bin/env python3
"""What PyTorch says at run time for a mistake of the corpus written by hand, next to
what `dlc check` says before anything runs (README: "Diagnostics, measured").

    .venv/bin/python scripts/torch_side_by_side.py

Each entry: a corpus case (tests/diagnostics/corpus/) and the same mistake in plain
PyTorch, run on random inputs; the first line of the exception (or "no error") is shown.
"""
from __future__ import annotations

import sys
import tempfile
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

from tests.diagnostic_cases import run_case  # noqa: E402
from tests.diagnostic_figures import corpus_cases  # noqa: E402


def flatten_then_linear():
    x = torch.randn(2, 3, 28, 28)
    h = nn.MaxPool2d(4)(torch.relu(nn.Conv2d(3, 3, 3, padding=1)(x)))
    return nn.Linear(196, 10)(torch.flatten(h, 1))


def residual_without_padding():
    x = torch.randn(2, 16, 32, 32)
    return x + nn.Conv2d(16, 16, 3)(x)


def shortcut_without_stride():
    x = torch.randn(2, 64, 32, 32)
    return nn.Conv2d(64, 128, 3, stride=2, padding=1)(x) + nn.Conv2d(64, 128, 1)(x)


def heads_not_dividing():
    x = torch.randn(2, 5, 768)
    return nn.MultiheadAttention(768, 10, batch_first=True)(x, x, x)


def float_ids():
    return nn.Embedding(1000, 64)(torch.rand(2, 5) * 1000)


def float_mask():
    q = torch.randn(2, 4, 5, 16)
    mask = torch.ones(2, 1, 1, 5)          # meant as "may attend": a float mask is *added* to the scores
    return F.scaled_dot_product_attention(q, q, q, attn_mask=mask)


def tie_different_shapes():
    embed, pos, head = nn.Embedding(1000, 64), nn.Embedding(512, 64), nn.Linear(64, 1000)
    head.weight = pos.weight
    ids = torch.randint(0, 512, (2, 5))
    return head(embed(ids) + pos(ids))


SAMPLES = [("linear-after-flatten-of-a-pooled-map", flatten_then_linear),
           ("residual-conv-forgot-padding", residual_without_padding),
           ("shortcut-forgot-stride", shortcut_without_stride),
           ("heads-do-not-divide-the-width", heads_not_dividing),
           ("float-ids-into-an-embedding", float_ids),
           ("mask-with-the-wrong-dtype", float_mask),
           ("tie-between-different-shapes", tie_different_shapes)]


def torch_says(run) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            out = run()
        except Exception as exc:  # what the user would see in the traceback's last line
            return f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    return f"no error (output {list(out[0].shape) if isinstance(out, tuple) else list(out.shape)})"


def dlc_says(name: str, workdir: Path) -> str:
    case = next(c for c in corpus_cases() if c.name == name)
    d = next(d for d in run_case(case, workdir / name) if d.is_error)
    line = case.path.read_text().splitlines()[d.span.line - 1].split("  # ")[0].strip()
    return f"line {d.span.line - case.start}: `{line}`\n    error[{d.code}]: {d.message}\n    hint: {d.hint}"


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        for name, run in SAMPLES:
            print(f"## {name}\n  PyTorch, at run time: {torch_says(run)}\n  dlc check, before: {dlc_says(name, Path(tmp))}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
