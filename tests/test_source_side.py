"""The source side of an encoder-decoder (compiler/codegen/source_side.py): which calls the
generated forward computes once per generate(), and how their lines are rewritten."""
from __future__ import annotations

import pytest

from compiler.codegen.decoding import computed_once_line
from tests.helpers import ROOT

MODULE = "self.k_v"


@pytest.mark.parametrize("line, expected", [
    ("k = self.k_v(memory)", 'k = computed_once(past_key_values, "k", self.k_v, memory)'),
    ("k, v = self.k_v(memory).chunk(2, dim=-1)",
     'k, v = computed_once(past_key_values, "k", self.k_v, memory).chunk(2, dim=-1)'),
    ("k = self.k_v(f(memory, 2))", 'k = computed_once(past_key_values, "k", self.k_v, f(memory, 2))'),
    ("k = self.k_v()", 'k = computed_once(past_key_values, "k", self.k_v)'),
])
def test_a_layer_call_goes_through_the_cache(line, expected):
    outs = line.split(" = ")[0].split(", ")
    assert computed_once_line([line], outs, MODULE, '"k"') == expected


@pytest.mark.parametrize("texts", [
    ["k = self.k_v(memory) + 1"],              # more than a view of the result: left as it is
    ["k = torch.relu(self.k_v(memory))"],
    ["k = self.k_v(memory)", "del memory"],
    ["k = self.k_v(memory\n)"],
])
def test_other_lowerings_run_at_every_step(texts):
    assert computed_once_line(texts, ["k"], MODULE, '"k"') is None


@pytest.mark.parametrize("spec, once", [("t5", 3), ("transformer", 3), ("gpt2", 0), ("llama", 0), ("bert", 0)])
def test_only_encoder_decoders_compute_values_once(spec, once):
    """The encoder call and each cross-attention's key and value projections of the encoder
    output; decoder-only models read no input without the decoded axis."""
    text = (ROOT / "generated" / f"{spec}.py").read_text()
    assert text.count("computed_once(past_key_values") == once
