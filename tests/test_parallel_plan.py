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
    # The bias table [buckets, heads] is sharded by heads, as the scores it is added to.
    assert plan["encoder.position_bias"] == plan["decoder.position_bias"] == "heads"


def test_llama_projections_behind_rotary_positions_are_planned():
    """q and k reach attention through Rotary, which turns each head's features on their own."""
    plan = plan_of("llama.dl", "LlamaForCausalLM", {"vocab_size": 96, "hidden_size": 32, "intermediate_size": 48,
                                                    "num_hidden_layers": 2, "num_attention_heads": 4,
                                                    "num_key_value_heads": 2})
    layer = {"self_attn.q_proj": "colwise", "self_attn.k_proj": "colwise", "self_attn.v_proj": "colwise",
             "self_attn.o_proj": "rowwise", "mlp.gate_proj": "colwise", "mlp.up_proj": "colwise",
             "mlp.down_proj": "rowwise"}
    assert plan == {"lm_head": "vocab_head", "decoder.embed_tokens": "vocab",
                    **{f"decoder.layers.*.{name}": style for name, style in layer.items()}}


def _optimized_plan(spec: str, model: str) -> tuple[dict[str, str], list]:
    from compiler.passes import optimize, select_passes
    from compiler.ir import entry_program
    result = check(ROOT / "specs" / spec)
    program, _ = optimize(entry_program(result.program), select_passes(2))
    plan = derive_plan(program, dict(program.models)[model])
    return plan.as_mapping(), plan.shards


def test_fused_projections_at_O2_are_packed_and_equal_parts_are_known():
    plan, shards = _optimized_plan("llama.dl", "LlamaModel")
    assert plan["layers.*.mlp.gate_proj_up_proj"] == "packed_colwise"       # gate and up: the first FFN half
    assert plan["layers.*.mlp.down_proj"] == "rowwise"
    equal = {s.path: s.equal_parts for s in shards if s.style == "packed_colwise"}
    # q is `heads * head_dim` wide, k and v `kv_heads * head_dim`: equal here, not in every configuration
    assert equal == {"layers.*.self_attn.q_proj_k_proj_v_proj": False, "layers.*.mlp.gate_proj_up_proj": True}
    plan, shards = _optimized_plan("bert.dl", "BertModel")
    assert plan["encoder.*.attention.query_key_value"] == "packed_colwise"
    assert all(s.equal_parts for s in shards if s.style == "packed_colwise")


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


def test_grouped_query_key_value_heads_must_divide_too():
    """8 query heads split 4 ways, but 2 key/value heads cannot: each rank needs whole ones."""
    sizes = {"num_attention_heads": 8, "num_key_value_heads": 2, "hidden_size": 512}
    result = check(ROOT / "specs" / "llama.dl", sizes, tp=4)
    messages = [d.message for d in result.diagnostics if d.is_error]
    assert messages and all(m.startswith("kv_heads=2 is not divisible by tp=4") for m in messages), messages
    assert check(ROOT / "specs" / "llama.dl", sizes, tp=2).ok


@pytest.mark.parametrize("spec, model", [("bert.dl", "BertForMaskedLM"), ("bert.dl", "BertForSequenceClassification"),
                                         ("gpt2.dl", "GPT2LMHeadModel")])
def test_the_plan_parallelize_collects_is_the_derived_plan_of_the_whole_model(spec, model):
    """A head class lists only its own layers' styles; `parallelize` adds the plan of the model
    class inside it, under its path: together, the plan derived for the whole model."""
    import torch
    from dlc.runtime.parallel import model_plan
    from generated import bert, gpt2
    module = {"bert.dl": bert, "gpt2.dl": gpt2}[spec]
    with torch.device("meta"):
        built = getattr(module, model)()
    assert model_plan(built, "TP_PLAN") == plan_of(spec, model)
    packed = {path: 3 for path, style in plan_of(spec, model).items() if style == "packed_colwise"}
    assert model_plan(built, "TP_PACKED") == packed
    assert len(getattr(module, model).__dict__.get("TP_PLAN", {})) < len(plan_of(spec, model))
