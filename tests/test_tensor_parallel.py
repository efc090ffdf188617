"""Tensor parallelism and FSDP of the generated models under torch.distributed (gloo, CPU,
world size 2): `parallelize(model, mesh)` from the derived TP_PLAN, and TP inside FSDP2 with
activation checkpointing (`apply_parallelism`), train a few steps with the same losses,
gradients and weights as single-process training of the same model from the same weights
(float64; atol 1e-10, rtol 1e-8: what is left is the order of the sums), at -O0 and -O2.
Checkpoints: a DCP checkpoint saved sharded reloads into an unsharded model, and the full
state_dict of a sharded model loads strictly into the unsharded layout, with the outputs of a
HuggingFace reference loaded through `load_reference_state_dict` before sharding.

Each test spawns its two processes once and runs its cases in them (tests/tensor_parallel_worker.py).
"""
from __future__ import annotations

import socket
from pathlib import Path

import pytest
import torch

from compiler.driver import compile_spec
from tests.helpers import ROOT

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not built")]

WORLD = 2
BERT = {"vocab": 96, "hidden": 32, "layers": 2, "heads": 4, "intermediate": 64, "max_positions": 32,
        "dropout": 0.0, "attention_dropout": 0.0}
GPT2 = {"vocab": 96, "positions": 32, "d_model": 32, "layers": 2, "heads": 4, "dropout": 0.0}
T5 = {"vocab": 96, "d_model": 32, "d_kv": 8, "d_ff": 64, "layers": 2, "heads": 4, "num_buckets": 8,
      "max_distance": 16, "dropout": 0.0}
TRANSFORMER = {"vocab": 96, "d_model": 32, "heads": 4, "d_ff": 64, "layers": 2, "dropout": 0.0}
LLAMA = {"vocab_size": 96, "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 2, "attention_dropout": 0.0}
# -O2 fuses Llama's q/k/v into one projection; with fewer key/value heads than query heads its
# parts differ in width and cannot be sharded as one (parallelize refuses): -O2 runs it with as many.
LLAMA_O2 = {**LLAMA, "num_key_value_heads": 4}

# (label, spec, model class, configuration, inputs: token sequences and masks)
MODELS = [
    ("BERT", "bert", "BertForMaskedLM", BERT, {"sequences": 1, "masks": 1}),
    ("GPT-2", "gpt2", "GPT2LMHeadModel", GPT2, {"sequences": 1, "masks": 1}),
    ("T5", "t5", "T5ForConditionalGeneration", T5, {"sequences": 2, "masks": 1}),
    ("Transformer", "transformer", "Transformer", TRANSFORMER, {"sequences": 2, "masks": 1}),
    ("Llama", "llama", "LlamaForCausalLM", LLAMA, {"sequences": 1, "masks": 1}),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _compiled(folder: Path, spec: str, config: dict, level: int) -> str:
    result = compile_spec(ROOT / "specs" / f"{spec}.dl", opt_level=level, overrides=config)
    assert result.ok and result.text is not None, [d.message for d in result.diagnostics]
    path = folder / f"{spec}_o{level}.py"
    path.write_text(result.text)
    return str(path)


def _case(folder: Path, label: str, spec: str, model: str, config: dict, inputs: dict, level: int, **extra) -> dict:
    if spec == "llama" and level == 2:
        config = LLAMA_O2
    return {"label": f"{label} -O{level} {extra.get('mode', '')}", "file": _compiled(folder, spec, config, level),
            "model": model, "config": config, "vocab": config.get("vocab", config.get("vocab_size")),
            "length": 8, **inputs, **extra}


def _spawn(cases: list[dict], tmp_path: Path) -> None:
    """Run the cases in WORLD processes; fail with every rank's report of every failed case."""
    import torch.multiprocessing as mp

    from tests import tensor_parallel_worker

    failures = tmp_path / "failures"
    failures.mkdir()
    mp.spawn(tensor_parallel_worker.run, args=(WORLD, _free_port(), cases, str(failures)), nprocs=WORLD)
    reports = sorted(failures.iterdir())
    assert not reports, "\n\n".join(path.read_text() for path in reports)


@pytest.mark.parametrize("level", [0, 2])
def test_tensor_parallel_training_matches_one_process(tmp_path, level):
    cases = [_case(tmp_path, *model, level, mode="tp") for model in MODELS]
    _spawn(cases, tmp_path)


@pytest.mark.parametrize("level", [0, 2])
def test_tensor_parallel_inside_fsdp_with_checkpointing_matches_one_process(tmp_path, level):
    cases = [_case(tmp_path, *model, level, mode="tp_fsdp") for model in MODELS]
    _spawn(cases, tmp_path)


@pytest.mark.parametrize("level", [0, 2])
def test_checkpoints_of_a_sharded_model_load_unsharded(tmp_path, level):
    """DCP saved sharded (TP, and TP inside FSDP) -> one process; full state_dict -> strict load."""
    cases = [_case(tmp_path, *model, level, mode=mode, check="checkpoint",
                   checkpoint=str(tmp_path / f"checkpoint_{model[1]}_{mode}"))
             for model in MODELS for mode in ("tp", "tp_fsdp")]
    _spawn(cases, tmp_path)


HF_GPT2 = {"vocab_size": 96, "n_positions": 32, "n_embd": 32, "n_layer": 2, "n_head": 4, "resid_pdrop": 0.0,
           "embd_pdrop": 0.0, "attn_pdrop": 0.0}
HF_BERT = {"vocab_size": 96, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
           "intermediate_size": 64, "max_position_embeddings": 32, "hidden_dropout_prob": 0.0,
           "attention_probs_dropout_prob": 0.0}


@pytest.mark.parametrize("level", [0, 2])
def test_reference_weights_give_the_reference_logits_sharded(tmp_path, level):
    pytest.importorskip("transformers")
    references = {"gpt2": ("GPT2LMHeadModel", "GPT2Config", HF_GPT2), "bert": ("BertForMaskedLM", "BertConfig", HF_BERT)}
    cases = [_case(tmp_path, *model, level, check="reference", reference=references[model[1]][0],
                   reference_config=references[model[1]][1], hf=references[model[1]][2])
             for model in MODELS if model[1] in references]
    _spawn(cases, tmp_path)
