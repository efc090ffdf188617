"""Long explanations for `dlc explain CODE`: what the diagnostic means, an
example that triggers it, and how to fix it.  One entry per code in
diagnostics.CODES (a test keeps the two in step)."""

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
An argument is missing, unexpected, or of the wrong type: a parameter of a
block or an attribute of an op, a tensor input, or a number of results.

    y = Linear(512, 512.5)(x)               # error: out_features must be an integer
    y = Linear(512, 512, bais=false)(x)     # error: no argument `bais`; did you mean `bias`?

Fix: follow the hint.  `dlc explain` of the op is in README's primitive list;
integer division is `//`, so `d_model // heads` stays an int.""",

    "DLC006": """\
A `require` constraint evaluated to false for the parameters this block was
given.  The hint shows the expression with the values substituted, and the
notes show where the block was instantiated.

    block MultiHeadAttention(d_model: int, heads: int) {
        require d_model % heads == 0, "heads must divide d_model"
        ...
    }
    attn = MultiHeadAttention(768, 10)(x, x)    # error: 768 % 10 == 0, i.e. 8 == 0

Fix: choose parameters that satisfy the constraint (heads=12).""",

    "DLC007": """\
A tensor's shape does not match what an op or block expects.  dlc checks shapes
symbolically before anything runs: `B` and `S` stay symbols, parameters become
numbers.  The diagnostic points at the line that needs the shape; notes show
where each input came from, where the block declares its input, and which
instance (`Model.encoder[3].attn`) the error is in.

    in x: [B, S, 512]
    h = Linear(512, 256)(x)
    y = LayerNorm(512)(h)                   # error: last dimension must be 512, got 256

Fix: make the producing and consuming layers agree (`LayerNorm(256)`).""",

    "DLC008": """\
A tensor's element type does not match: token ids must be integers, masks must
be bool, arithmetic needs floating-point tensors.

    in ids: [B, S]                          # float by default
    e = Embedding(30522, 768)(ids)          # error: must hold integer ids

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
A compile-time expression combines values of incompatible kinds, or is not
decidable at compile time: comparing a tensor, indexing a number, a dimension
that is not a positive integer, a condition that depends on a symbolic size.

    let half = d_model / 2                  # a float (384.0)
    in x: [B, S, half]                      # error: a dimension must be an integer

Fix: use `//` for integer division; keep static `if` conditions on parameters.""",

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
A `tie` names a parameter that does not exist, or two parameters whose shapes
differ.  Paths go through layer names, block instances and repeat indices:
`tie generator.weight = embed.weight`, `tie decoder.0.attn.query.weight = ...`.

    embed = Embedding(vocab, d_model)
    generator = Linear(d_model, vocab)
    tie generator.weight = embed.weight     # ok: both [vocab, d_model]

Fix: name an existing parameter (the message lists them) with a matching shape.""",

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

    "DLC030": """\
An entry point is over a budget given to `dlc check`: more parameters than
--max-params, or more FLOPs per forward than --max-flops at the sizes given
with --dims (FLOPs depend on the batch and sequence sizes, so --max-flops
needs --dims for every free dimension):

    dlc check specs/ --max-params 120M --max-flops 25G --dims B=1,S=512

Counts are those of `dlc summary`: tied and shared parameters once, FLOPs of
one forward call in eval mode.

Fix: shrink the model, or raise the budget if the growth is intended.""",
}
