"""`dlc summary`: parameter and buffer counts equal those of the generated models, and the
matmul/convolution MACs agree exactly with torch.utils.flop_counter on them.

FlopCounterMode counts only matrix products and convolutions (mm, addmm, bmm, convolution,
sdpa), at 2 FLOPs per multiply-accumulate, and ignores bias adds; so 2 * MACs must equal its
total exactly (tolerance 0).  The element-wise part of `flops` (norms, softmax, activations,
residual adds, pooling) has no counterpart there; it is checked by hand-computed cases below.
Models are built on the meta device: full-size, no memory, no weights.
"""
from __future__ import annotations

import ast
import functools
import importlib
import json
import re
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from compiler.cli import main
from compiler.ir.types import symbol
from compiler.driver import check
from compiler.ir import Program, entry_program
from compiler.passes import optimize, select_passes
from compiler.tools.summary import as_number, at_dims, summarize, summarize_program
from tests.helpers import ROOT, compile_to_module

DIMS = {"B": 2, "S": 16, "T": 12, "H": 64, "W": 64, "C": 4, "K": 5}
DTYPES = {"float": torch.float32, "int64": torch.int64, "int32": torch.int32, "bool": torch.bool}
SPECS = sorted((ROOT / "specs").glob("*.dl"))
# One of each kind in the fast lane: ties (Transformer, BertForMaskedLM), LSTMs (Tagger),
# convolutions with batch-norm buffers (ResNet18), relative position bias and cross attention (T5).
FAST = {"Transformer", "BertForMaskedLM", "Tagger", "ResNet18", "T5ForConditionalGeneration"}


def _entry_points() -> list:
    """(spec, entry point) for every model and variant, read off generated/ (cheap at collection)."""
    cases = []
    for spec in SPECS:
        text = (ROOT / "generated" / f"{spec.stem}.py").read_text()
        names = ast.literal_eval(re.search(r"^__all__ = (\[.*?\])$", text, re.M | re.S).group(1))
        for name in names:
            marks = () if name in FAST else (pytest.mark.slow,)
            cases.append(pytest.param(spec, name, id=name, marks=marks))
    return cases


@functools.lru_cache(maxsize=None)
def _built(spec: Path) -> Program:
    """The spec's entry points after -O1's passes, once per spec: what summarize_program summarizes."""
    result = check(spec.relative_to(ROOT))
    assert result.ok, [d.message for d in result.diagnostics]
    return optimize(entry_program(result.program), select_passes(1))[0]


def _summary(spec: Path, name: str):
    """summarize_program's summary of one entry point (summarizing all of resnet.dl's six models
    for each one tested cost seconds); test_summary_program_summarizes_each_entry_point keeps the
    two the same."""
    return summarize(_built(spec), name)


def summarize_spec(spec: Path, overrides: dict | None = None, opt_level: int = 1) -> list:
    result = check(spec, overrides)
    assert result.ok, [d.message for d in result.diagnostics]
    return summarize_program(result.program, opt_level)


def _inputs(summary, dims: dict[str, int]) -> list[torch.Tensor]:
    return [torch.zeros([int(at_dims(d, dims)) for d in t.shape], dtype=DTYPES[t.dtype], device="meta")
            for _, t in summary.inputs if not t.optional]


def _counted(model: torch.nn.Module, inputs: list[torch.Tensor]) -> int:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(*inputs)
    return counter.get_total_flops()


@pytest.fixture(scope="module", autouse=True)
def _root(request):
    mp = pytest.MonkeyPatch()
    mp.chdir(ROOT)
    yield
    mp.undo()


@pytest.mark.parametrize("spec, name", _entry_points())
def test_counts_match_the_generated_model(spec: Path, name: str):
    summary = _summary(spec, name)
    module = importlib.import_module(f"generated.{spec.stem}")
    with torch.device("meta"):
        model = getattr(module, name)().eval()
    assert summary.root.params == sum(p.numel() for p in model.parameters())      # ties once, as torch dedups
    assert summary.root.buffers == sum(b.numel() for b in model.buffers())
    assert 2 * as_number(at_dims(summary.root.macs, DIMS)) == _counted(model, _inputs(summary, DIMS))


def test_summary_program_summarizes_each_entry_point():
    """What the count sweep reads one entry point at a time is summarize_program's own answer."""
    spec = ROOT / "specs" / "word2vec.dl"
    whole = summarize_spec(spec.relative_to(ROOT))
    assert len(whole) == 2
    for summary in whole:
        alone = _summary(spec, summary.name)
        assert (alone.root.params, alone.root.buffers, str(alone.root.macs)) == \
            (summary.root.params, summary.root.buffers, str(summary.root.macs))


def test_fused_projections_and_sdpa_at_O2(tmp_path):
    """-O2 fuses Q/K/V into one GEMM and calls F.scaled_dot_product_attention: the same MACs."""
    overrides = {"layers": 2}
    module = compile_to_module(ROOT / "specs/bert.dl", tmp_path, overrides=overrides, opt_level=2)
    for opt in (1, 2):
        summary = summarize_spec(Path("specs/bert.dl"), overrides, opt_level=opt)[0]
        with torch.device("meta"):
            model = module.BertModel().eval()
        assert 2 * as_number(at_dims(summary.root.macs, DIMS)) == _counted(model, _inputs(summary, DIMS))


SMALL = """
model Small(d: int = 8, vocab: int = 100) {
    in ids: [B, S] int64
    embed = Embedding(vocab, d)
    x = embed(ids)
    h = LayerNorm(4 * d)(Linear(d, 4 * d)(x))
    y = Linear(4 * d, d, bias=false)(ReLU()(h))
    again = embed(ids)
    head = Linear(d, vocab, bias=false)
    out logits = head(y + again)
    tie head.weight = embed.weight
}
"""


def test_hand_computed_counts(tmp_path):
    spec = tmp_path / "small.dl"
    spec.write_text(SMALL)
    s = summarize_spec(spec)[0]
    B, S = symbol("B"), symbol("S")
    # embedding 100*8 (the head's weight is tied to it); Linear 8->32 with bias; LayerNorm(32); Linear 32->8
    assert s.root.params == 800 + (8 * 32 + 32) + 2 * 32 + 32 * 8
    assert [t.parameter for t in s.tied] == ["head.weight"]
    assert s.root.macs == B * S * (8 * 32 + 32 * 8 + 8 * 100)
    # 2 per MAC (bias adds are not counted, as torch's flop counter does not count them), LayerNorm
    # 5 per element of 32, ReLU 1 per element, the residual add 1 per element of 8
    assert s.root.flops == 2 * s.root.macs + B * S * (5 * 32 + 32 + 8)
    # float32 outputs: embedding twice (8), linear 32, norm 32, relu 32, linear 8, add 8, head 100
    assert s.root.activation_bytes == 4 * B * S * (8 + 8 + 32 + 32 + 32 + 8 + 8 + 100)
    shared = [r for r in s.root.rows(9) if r.name == "embed" and r.notes]
    assert shared and shared[0].params == 0


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_bert_prints_its_parameter_count(capsys):
    code, out, _ = run(capsys, "summary", "specs/bert.dl")
    assert code == 0 and "parameters             109,482,240" in out
    assert "other entry points: BertForMaskedLM, BertForSequenceClassification" in out
    # 12 equal layers: the first, and one row for the other eleven (11 * 7,087,872 parameters)
    assert re.search(r"\n  0 +BertLayer +\[B, S, 768\] +7,087,872 ", out)
    assert re.search(r"\n  1–11 +11 × BertLayer \(as 0\) +\[B, S, 768\] +77,966,592 ", out)


def test_dims_give_numbers_and_overrides_apply(capsys):
    code, out, _ = run(capsys, "summary", "specs/bert.dl", "-D", "layers=2", "--dims", "B=1,S=128", "--depth", "1")
    assert code == 0 and "2 × BertLayer" in out and "12 × BertLayer" not in out
    assert "at B=1, S=128" in out and "[1, 128, 768]" in out


def test_json_schema(capsys):
    code, out, _ = run(capsys, "summary", "specs/transformer.dl", "--format", "json", "--dims", "B=2,S=16,T=12")
    doc = json.loads(out)
    model = doc["models"][0]
    assert doc["version"] == 1 and model["name"] == "Transformer" and model["params"] == 63_082_496
    assert model["tied"] == [{"parameter": "generator.weight", "source": "src_embed.weight", "numel": 37000 * 512}]
    assert model["macs"]["value"] == 3_390_111_744 // 2       # FlopCounterMode's count / 2 at these dims
    assert {layer["path"] for layer in model["layers"]} >= {"encoder", "encoder.0", "generator"}


def test_markdown_and_depth(capsys):
    code, out, _ = run(capsys, "summary", "specs/resnet.dl", "--model", "ResNet18", "--format", "markdown",
                       "--dims", "B=1,H=224,W=224", "--depth", "1")
    assert code == 0 and out.startswith("### ResNet18") and "| `layer4` | 2 × BasicBlock | [1, 512, 7, 7] |" in out
    assert "**MACs**: 1,814,073,344 (1.81 G)" in out        # torchvision's model card: 1.81 GFLOPS (MACs)


def test_unknown_model_and_bad_dims(capsys):
    assert run(capsys, "summary", "specs/bert.dl", "--model", "Nope")[0] == 2
    with pytest.raises(SystemExit) as info:
        main(["summary", "specs/bert.dl", "--dims", "B=x"])
    assert info.value.code == 2
    code, _, err = run(capsys, "summary", "specs/bert.dl", "--dims", "Q=3")
    assert code == 0 and "--dims Q: not a free dimension" in err


def test_a_spec_without_a_model(capsys):
    code, out, err = run(capsys, "summary", "stdlib/layers.dl")
    assert code == 2 and "declares no model" in err and out == ""


def test_a_broken_spec_gives_diagnostics(capsys, tmp_path):
    (tmp_path / "bad.dl").write_text("model M(d: int = 4) {\n    in x: [B, d]\n    out y = Linear(5, d)(x)\n}\n")
    code, out, err = run(capsys, "summary", str(tmp_path / "bad.dl"))
    assert code == 1 and "error[DLC007]" in err and out == ""


# ---------------------------------------------------------------------- budgets in dlc check
def test_parameter_budget(capsys):
    code, _, err = run(capsys, "check", "specs/bert.dl", "--max-params", "100M")
    assert code == 1 and "error[DLC061]: `BertModel` has 109,482,240 parameters, over the budget of 100,000,000" in err
    assert run(capsys, "check", "specs/bert.dl", "--max-params", "110M")[0] == 0


def test_flop_budget_needs_dims(capsys):
    code, _, err = run(capsys, "check", "specs/gpt2.dl", "--max-flops", "1G")
    assert code == 1 and "depend on B, T" in err and "--dims B=1,T=1" in err
    code, _, err = run(capsys, "check", "specs/gpt2.dl", "--max-flops", "1G", "--dims", "B=1,T=128")
    assert code == 1 and "FLOPs per forward at B=1, T=128, over the budget" in err
    assert run(capsys, "check", "specs/gpt2.dl", "--max-flops", "1T", "--dims", "B=1,T=128")[0] == 0


def test_summary_and_graph_need_no_torch():
    import subprocess
    import sys
    code = ("import sys, compiler.cli\n"
            "assert compiler.cli.main(['summary', 'specs/t5.dl', '--dims', 'B=1,S=8,T=8', '--format', 'json']) == 0\n"
            "assert compiler.cli.main(['check', 'specs/bert.dl', '--max-params', '200M']) == 0\n"
            "assert compiler.cli.main(['graph', 'specs/transformer.dl', '--format', 'dot']) == 0\n"
            "assert 'torch' not in sys.modules, 'dlc imported torch'\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False,
                            timeout=120)
    assert result.returncode == 0, result.stderr
