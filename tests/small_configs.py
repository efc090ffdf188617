"""Small configurations of the HuggingFace families, on both sides: the constructor arguments
(or `-D` overrides) of our generated classes, and the reference config with the same sizes.

Full-size models cost seconds to build and run (BERT-base and GPT-2 small hold 110-124M
weights); what a parity test checks about names, ties, masks and numerics holds at any size,
so the fast lane builds these, and the full-size checks run in the full suite (tests/fast_lane.py).
Every call returns a new config: a test may change it.
"""
from __future__ import annotations

# our constructor arguments / -D overrides
BERT = {"vocab": 97, "hidden": 32, "layers": 2, "heads": 4, "intermediate": 64, "max_positions": 16}
GPT2 = {"vocab": 97, "positions": 16, "d_model": 32, "layers": 2, "heads": 4}
T5 = {"vocab": 97, "d_model": 32, "d_kv": 8, "d_ff": 64, "layers": 2, "heads": 4, "num_buckets": 8,
      "max_distance": 20}
# As many key/value heads as query heads: the committed llama.py was compiled for that (its class
# has no repeat of grouped key/value heads), so grouped-query attention needs its own compile.
LLAMA = {"vocab_size": 101, "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 4}


def bert_config(**extra) -> "transformers.BertConfig":  # noqa: F821 (imported when called)
    """BERT's reference config at the sizes of BERT (eager attention)."""
    import transformers
    return transformers.BertConfig(vocab_size=97, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                   intermediate_size=64, max_position_embeddings=16, attn_implementation="eager",
                                   **extra)


def gpt2_config(**extra) -> "transformers.GPT2Config":  # noqa: F821
    """GPT-2's reference config at the sizes of GPT2 (eager attention)."""
    import transformers
    return transformers.GPT2Config(vocab_size=97, n_positions=16, n_embd=32, n_layer=2, n_head=4,
                                   attn_implementation="eager", **extra)


def t5_config(**extra) -> "transformers.T5Config":  # noqa: F821
    """T5's reference config at the sizes of T5 (eager attention)."""
    import transformers
    return transformers.T5Config(vocab_size=97, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4,
                                  relative_attention_num_buckets=8, relative_attention_max_distance=20,
                                  attn_implementation="eager", **extra)
