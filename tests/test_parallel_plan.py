"""Tensor-parallel plans derived from the block structure (compiler/check/parallel.py),
against the plans people write by hand for the same models (HF's `base_model_tp_plan`
of BERT, GPT-2, T5 and Llama-style models: q/k/v and the first feed-forward projection
column-wise, attention output and the second projection row-wise, the vocabulary
sharded), and `dlc check --tp N`."""
from __future__ import annotations

import subprocess
import sys

import pytest

from compiler.check.parallel import derive_plan
from compiler.driver import check
from tests.helpers import ROOT


def plan_of(spec: str, model: str, overrides: dict | None = None) -> dict[str, str]:
    result = check(ROOT / "specs" / spec, overrides)
    assert result.ok, [d.message for d in result.diagnostics]
    key = dict(result.program.models)[model]
    return derive_plan(result.program, key).as_mapping()


def test_bert_plan_is_the_megatron_layout():
    layer = {"query": "colwise", "key": "colwise", "value": "colwise", "output": "rowwise"}
    expected = {"embeddings.word_embeddings": "vocab",
                **{f"encoder.*.attention.{name}": style for name, style in layer.items()},
                "encoder.*.feed_forward.hidden": "colwise", "encoder.*.feed_forward.output": "rowwise"}
    assert plan_of("bert.dl", "BertModel") == expected


def test_gpt2_fused_qkv_is_packed_and_the_head_follows_the_vocabulary():
    plan = plan_of("gpt2.dl", "GPT2LMHeadModel")
    assert plan == {"transformer.token_embeddings": "vocab",
                    "transformer.blocks.*.attention.qkv": "packed_colwise",
                    "transformer.blocks.*.attention.output": "rowwise",
                    "transformer.blocks.*.feed_forward.hidden": "colwise",
                    "transformer.blocks.*.feed_forward.output": "rowwise",
                    "lm_head": "vocab_head"}


def test_t5_cross_attention_and_both_stacks_are_planned():
    plan = plan_of("t5.dl", "T5Model")
    for stack, attentions in (("encoder", ["self_attention"]), ("decoder", ["self_attention", "cross_attention"])):
        for attention in attentions:
            for name in "qkv":
                assert plan[f"{stack}.layers.*.{attention}.{name}"] == "colwise"
            assert plan[f"{stack}.layers.*.{attention}.o"] == "rowwise"
        assert plan[f"{stack}.layers.*.ff.wi"] == "colwise" and plan[f"{stack}.layers.*.ff.wo"] == "rowwise"
    assert plan["shared"] == "vocab"
    assert not any("relative" in path for path in plan), "the position bias table stays replicated"


def test_wrap_units_are_the_elements_of_each_repeat_stack():
    result = check(ROOT / "specs" / "t5.dl")
    plan = derive_plan(result.program, dict(result.program.models)["T5Model"])
    assert plan.wrap_units == ["encoder.layers.*", "decoder.layers.*"]


def _check_tp(spec: str, tp: int, *defines: str) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "dlc", "check", "--tp", str(tp), str(ROOT / "specs" / spec)]
    for define in defines:
        args += ["-D", define]
    return subprocess.run(args, capture_output=True, text=True, cwd=ROOT)


def test_twelve_heads_cannot_be_split_five_ways():
    done = _check_tp("bert.dl", 5)
    assert done.returncode == 1
    assert done.stderr.count("error[DLC060]") == 1, done.stderr
    assert "heads=12 is not divisible by tp=5" in done.stderr
    assert "choose tp among 2, 3, 4, 6, 12" in done.stderr


@pytest.mark.parametrize("tp", [2, 3, 4, 6, 12])
def test_bert_shards_every_way_its_heads_allow(tp):
    result = check(ROOT / "specs" / "bert.dl", tp=tp)
    assert result.ok, [d.message for d in result.diagnostics]


def test_a_feed_forward_width_that_does_not_divide_is_reported_at_its_layer():
    result = check(ROOT / "specs" / "transformer.dl", {"d_ff": 2050}, tp=4)
    messages = [d.message for d in result.diagnostics if d.is_error]
    assert messages and all("2050 features, which is not divisible by tp=4" in m for m in messages), messages
    lines = {(ROOT / d.span.file).read_text().splitlines()[d.span.line - 1].strip() for d in result.diagnostics}
    assert all("Linear(d_model, d_ff)" in line or "Linear(d_ff, d_model)" in line for line in lines), lines


def test_an_odd_vocabulary_is_left_replicated_not_an_error():
    assert check(ROOT / "specs" / "gpt2.dl", tp=2).ok          # 50257 tokens: the embedding stays whole
