"""Long explanations for `dlc explain CODE`: what the diagnostic means, an
example that triggers it, and how to fix it.  One entry per code in
diagnostics.codes.CODES (a test keeps the two in step): the kept codes here, the
codes split out of DLC005 and DLC011 in `explanations_split`."""
from compiler.diagnostics.explanations_init import INIT_EXPLANATIONS
from compiler.diagnostics.explanations_scan import SCAN_EXPLANATIONS
from compiler.diagnostics.explanations_split import SPLIT_EXPLANATIONS

EXPLANATIONS: dict[str, str] = {
    "DLC000": """\
A shape rule inside dlc failed unexpectedly.  This is a bug in dlc, not in your
spec: the diagnostic names the op whose rule crashed.  Please report it with
the spec; meanwhile, `dlc check` reports everything else it found.""",

    "DLC001": """\
The text does not follow dlc's grammar.  The diagnostic shows the token where
parsing stopped and what could have come there.

    model M(d: int = 8) {
        in x: [B, d]
        out y = if d = 8 then x else x      # error: `=` where `==` was expected
    }

Fix: `if d == 8 then x else x`.  Conditional expressions are written
`if COND then A else B`; strings use double quotes; every `{` needs a `}`.""",

    "DLC002": """\
A name is used that nothing defines: not a parameter, `let`, input, earlier
statement, or symbolic dimension of an input.

    block FFN(d_model: int) {
        in x: [B, S, d_model]
        out y = Linear(d_model, d_ff)(x)    # error: `d_ff` is not defined
    }

Fix: add a parameter (`d_ff: int`) or a `let`.  The hint suggests the closest
defined name when you misspelled one.""",

    "DLC003": """\
A name is bound twice in one block, or a block/variant name is defined twice.
Values are bound once, like SSA: a second `h = ...` would make it unclear which
`h` later lines mean.

    h = Linear(d, d)(x)
    h = ReLU()(h)                           # error: `h` is already defined

Fix: give the new value its own name (`h_act = ReLU()(h)`).""",

    "DLC004": """\
A call names neither a primitive op nor a block in scope.

    y = LayerNrom(512)(x)                   # error: unknown; did you mean `LayerNorm`?

Fix: correct the spelling, or `import` the module that defines the block
(imports are searched next to the spec, in $DLC_PATH, then in stdlib/).""",

    "DLC005": """\
An argument of an op or a block has the wrong type, or a value outside the range
the op accepts (a probability above 1, a negative size).

    y = Linear(512, 512.5)(x)               # error: out_features must be an integer
    y = Dropout(p=1.5)(x)                   # error: p must be less than 1
    y = Block("4")(x)                       # error: parameter `d` expects int, got str "4"

Fix: follow the hint.  Integer division is `//`, so `d_model // heads` stays an
int.  A misspelled argument name is DLC030, a missing one DLC031.""",

    "DLC006": """\
A `require` constraint evaluated to false for the parameters this block was
given.  When the block comes from another module (a library), the diagnostic
points at the call whose arguments to change, and a note shows the requirement;
the hint proposes values that satisfy a divisibility requirement and shows the
expression with the values substituted.

    block MultiHeadAttention(d_model: int, heads: int) {
        require d_model % heads == 0, "heads must divide d_model"
        ...
    }
    attn = MultiHeadAttention(768, 10)(x, x)    # error here: 768 % 10 == 0, i.e. 8 == 0
                                                # hint: `heads=8`, `heads=12` or `heads=6` divide 768

Fix: choose parameters that satisfy the constraint (heads=12).""",

    "DLC007": """\
A tensor's shape does not match what an op or block expects.  dlc checks shapes
symbolically before anything runs: `B` and `S` stay symbols, parameters become
numbers.  The diagnostic points at the line to edit: the op that needs the shape,
or, for a residual `x + h` that does not broadcast, the layer that made `h`.
Notes show where each input came from and which instance
(`Model.encoder[3].attn`) the error is in; the hint proposes the value to write.

    in x: [B, S, 512]
    h = Linear(512, 256)(x)
    y = LayerNorm(512)(h)                   # error: last dimension must be 512, got 256
                                            # hint: set `dim=256`

Fix: make the producing and consuming layers agree (`LayerNorm(256)`).""",

    "DLC008": """\
A tensor's element type does not match: token ids must be integers, masks must
be bool, arithmetic needs floating-point tensors.  When the tensor is an input
passed straight through, the diagnostic points at its declaration.

    in ids: [B, S]                          # error here: float by default
    e = Embedding(30522, 768)(ids)          # (note: must hold integer ids)

Fix: declare the dtype: `in ids: [B, S] int64`, `in mask: [B, S] bool`.""",

    "DLC009": """\
Blocks or imports refer to each other in a cycle, so there is no finite model.

    block A(d: int) { in x: [B, d]  out y = A(d)(x) }   # error: A uses itself

Fix: use `repeat(n)` for stacks; move blocks shared by two modules into a
third module that both import.""",

    "DLC010": """\
An imported module could not be found or read.  `import attention` looks for
attention.dl next to the importing spec, then in each folder of $DLC_PATH, then
in dlc's stdlib/.

Fix: check the spelling (the hint suggests a close name) or set DLC_PATH.""",

    "DLC011": """\
A compile-time expression combines values of incompatible kinds: arithmetic on
a string, comparing a tensor, indexing a number, calling a value that is not a
block or an op, binding a tensor with `let`.

    let s = "a" * 2                         # error: cannot apply `*` to a str
    let h = Linear(d, d)(x)                 # error: `let` binds compile-time values

Fix: keep compile-time values (ints, floats, strings, lists) apart from tensors;
bind tensors with `name = ...`.  A bad dimension is DLC044, a condition on a
symbolic size DLC045.""",

    "DLC012": """\
A name cannot reach the generated Python: layer names become attributes and
state_dict keys, block names become classes.  Python keywords, dunder names,
attributes of torch.nn.Module (`training`, `forward`, `parameters`, ...), and
names the generated module itself uses (`torch`, `nn`, `F`, ...) are rejected.

    training = Linear(d, d)(x)              # error: an attribute of torch.nn.Module

Fix: pick another name.""",

    "DLC013": """\
The spec asks for more than dlc's documented limits (README, "Limits"): repeat
counts, nesting depth of blocks or brackets, number of nodes or imported
modules, integer size, file size.  The limits keep `dlc check` fast and bounded
in CI whatever the input.

    layers = repeat(10 ** 9) EncoderLayer(512, 8, 2048)(x)   # error: exceeds the limit""",

    "DLC014": """\
A block declares no output, so nothing it computes could be used.

Fix: add `out NAME` for an existing value or `out NAME = EXPR`.""",

    "DLC015": """\
A `tie` names a parameter that does not exist.  Paths go through layer names,
block instances and repeat indices: `tie generator.weight = embed.weight`,
`tie decoder.0.attn.query.weight = ...`.

    embed = Embedding(vocab, d_model)
    generator = Linear(d_model, vocab)
    tie generator.weigth = embed.weight     # error: no parameter `generator.weigth`

Fix: name an existing parameter (the message lists them).  Two parameters of
different shapes are DLC051.""",

    "DLC016": """\
`dlc compile` refuses to write an output that would destroy something: a file at the
output path that dlc did not generate (its first line is not the `# @generated by dlc`
header), or a second spec compiling to the same file as an earlier one
(`a/m.dl b/m.dl -o out` both want out/m.py).  Nothing is written.

Fix: rename a spec, move the hand-written file, or pass `--force` to overwrite files that
dlc did not generate.""",

    "DLC017": """\
The output cannot be written: the output folder is a file, an output path is a folder, or
the file system refused (permissions, a full disk).  A compile writes all its outputs or
none, so the folder is left as it was.

Fix: choose another folder with `-o`, or move what is in the way.""",

    "DLC020": """\
Warning: a block input is never read.  The generated forward() still takes it,
which usually means the spec forgot to use it (a mask that never reaches the
attention).  `--strict` makes this an error.

Fix: use the input, or remove it.""",

    "DLC021": """\
Warning: a value is computed but never reaches an output.  Dead-code
elimination removes it from the generated model; its parameters are not
created.  `--strict` makes this an error.

Fix: return it with `out`, use it, or remove it.""",
    "DLC022": """\
Warning: a block has the name of a primitive op, for example

    block Linear(d: int) { in x: [B, d]  out y = ReLU()(x) }

Where the block is in scope, `Linear(...)` means the block, and the op of that
name cannot be reached from there.  (Before DLC022 the block was silently
ignored in favour of the op.)  `dlc ops` lists the op names.

Fix: give the block a name of its own, unless replacing the op is the point.""",

    "DLC061": """\
An entry point is over a budget given to `dlc check`: more parameters than
--max-params, or more FLOPs per forward than --max-flops at the sizes given
with --dims (FLOPs depend on the batch and sequence sizes, so --max-flops
needs --dims for every free dimension):

    dlc check specs/ --max-params 120M --max-flops 25G --dims B=1,S=512

Counts are those of `dlc summary`: tied and shared parameters once, FLOPs of
one forward call in eval mode.

Fix: shrink the model, or raise the budget if the growth is intended.""",
    "DLC075": """\
A model says `decode logits from input_ids` (so that it gets `generate()`), but
nothing in it attends causally: there is no decoder step whose keys and values a
cache could keep, and no reason the scores at the last position predict the next
token.

    model Tagger(...) {
        ...
        out logits: [B, T, tags] = head(encoder)   # a bidirectional encoder
        decode logits from input_ids               # error: no decoder step
    }

A recurrent decoder is a decoder step too: a `scan` in the model along the decoded
ids' time axis (specs/seq2seq.dl), whose carried state the cache keeps between tokens.

Fix: give the decoder's self-attention causal=true (as GPT-2's and T5's decoders
have), or drop the `decode` line: a model that labels every position is not
decoded token by token.""",
    "DLC076": """\
A `decode logits from tokens` statement must name an output of the model with one
score vector per position ([B, T, vocab]) and a required [B, T] int64 input on the
same time axis, the ids each step feeds.  An encoder-decoder may take one more id
input, the source (T5's input_ids, the Transformer's src).

    decode logits from input_ids     # GPT-2
    decode logits from decoder_input_ids    # T5: input_ids is the source

Fix: name the model's logits output and its token-id input.""",
}

EXPLANATIONS.update(SPLIT_EXPLANATIONS)
EXPLANATIONS.update(INIT_EXPLANATIONS)
EXPLANATIONS.update(SCAN_EXPLANATIONS)
