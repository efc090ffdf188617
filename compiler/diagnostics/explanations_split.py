"""Long explanations for the codes split out of DLC005 (bad argument) and DLC011
(type error) when codes became named constants, and for the later ones."""

SPLIT_EXPLANATIONS: dict[str, str] = {
    "DLC030": """\
A call names an argument that the op or block does not have, usually a typo.

    y = Linear(512, 512, biass=false)(x)    # error: no argument `biass`; did you mean `bias`?
    y = FFN(512, d_fff=2048)(x)             # error: `FFN` has no parameter `d_fff`

Fix: use the name the hint proposes; `dlc explain` of the op lists its arguments.""",

    "DLC031": """\
A block parameter without a default is given no value.

    block FFN(d_model: int, d_ff: int) { ... }
    y = FFN(512)(x)                         # error: `FFN` needs a value for parameter `d_ff`

Fix: pass it (`FFN(512, 2048)`), or give the parameter a default.""",

    "DLC032": """\
More positional arguments than the op or block has parameters.

    y = Linear(512, 512, false, 3)(x)       # error: Linear takes at most 3 arguments

Fix: drop the extra argument, or name the arguments so the mistake shows.""",

    "DLC033": """\
The same argument is given twice, by position and by name or twice by name.

    y = Linear(512, 256, in_features=512)(x)   # error: `in_features` is given twice

Fix: give each argument once.""",

    "DLC034": """\
An enum parameter (`act: {"relu", "gelu"}`) is given a value it does not list.

    y = FFN(512, 2048, act="gleu")(x)       # error: must be one of "relu", "gelu"

Fix: use one of the listed values (the hint names the closest).""",

    "DLC035": """\
A layer is applied to more or fewer tensor inputs than it declares, or a
required input is given `none`.

    y = MultiHeadAttention(512, 8)(x)       # error: missing input `kv`

Fix: pass every required input in the declared order (`(x, x)` for
self-attention); the note shows the block's `in` lines.""",

    "DLC036": """\
A compile-time value (a number, string, list or block) is used where a tensor is
needed: as a layer's input, or as a block output.

    y = Linear(d, d)(d)                     # error: expected a tensor, got an int
    y = Select(dim=1, index=i)(x)           # `index` must be a number, not a tensor

Fix: pass the tensor the layer should read; compile-time arguments go in the
first parentheses, tensors in the second: `Linear(d, d)(x)`.""",

    "DLC037": """\
A keyword argument where only positional ones are allowed: tensor inputs, and
built-ins such as `range`.

    y = Linear(d, d)(input=x)               # error: tensor arguments are positional

Fix: pass them by position: `Linear(d, d)(x)`.""",

    "DLC038": """\
A `repeat(n)` cannot chain its layer: each copy's first output feeds the next
copy's first input, so the layer needs state (a block or an op with weights),
a positive integer count, and a first input that is a tensor.

    y = repeat(3) ReLU()(x)                 # error: ReLU has no state to repeat
    y = repeat(0) Layer(d)(x)               # error: the count must be a positive int

Fix: repeat a block or a layer with parameters; apply a stateless op once.""",

    "DLC039": """\
A `rename` rule (checkpoint key mapping) is inconsistent: the reference name is
not a key prefix, a placeholder of the new name does not appear in it, or a
placeholder's value is neither an int nor a string.

    rename "encoder.{i}" = "layers.{j}"     # error: `{i}` must appear on both sides

Fix: use the same placeholders on both sides.""",

    "DLC040": """\
A statement appears where it is not allowed: a `for` body may only hold `let`,
`require`, `rename`, `if` and `for` (layers and outputs are not repeated by
`for`; use `repeat(n)` for stacks of layers).

Fix: move layer statements out of the `for`, or use `repeat(n)`.""",

    "DLC041": """\
The left side names more or fewer values than the right side gives.

    a, b = Split([256, 256, 256], dim=-1)(x)    # error: 2 names on the left, 3 results

Fix: name every result, or change the split sizes.""",

    "DLC042": """\
A required input follows an optional one.  The generated forward() takes inputs
in order, and Python puts parameters with defaults last.

    in mask: [B, S] bool optional
    in x: [B, S, d]                         # error: follows optional input `mask`

Fix: declare optional inputs last.""",

    "DLC043": """\
An input that may be none (it comes from an `optional` input) reaches an op
port that needs a tensor.

Fix: pass optional inputs only to ports that accept none (attention masks), or
make the input required.""",

    "DLC044": """\
A dimension in a shape is not a positive integer or a symbol: a float, zero, a
negative number, or a name that is not a size (a block, a string).

    let half = d_model / 2                  # a float (384.0)
    in x: [B, S, half]                      # error: a dimension must be an integer

Fix: use `//` for integer division; name symbolic sizes with a fresh capital
name (`S`) that no block uses.""",

    "DLC045": """\
A static condition (`if`, `require`) depends on a symbolic size such as `B` or
`S`, which is only known at run time.

    if S > 512 then ... else ...            # error: cannot be decided at compile time

Fix: make it depend on parameters (`max_len`), which are numbers at compile time.""",

    "DLC046": """\
A compile-time expression divides by zero.

    let head_dim = d_model // heads         # error when heads = 0

Fix: check the parameter values (`-D` overrides included); a `require heads > 0`
gives the reader a better message.""",

    "DLC047": """\
A compile-time list index is out of range.

    let widths = [64, 128, 256]
    h = Linear(widths[3], d)(x)             # error: index 3 is out of range for a list of 3

Fix: lists are indexed from 0.""",

    "DLC048": """\
A parameter is declared with a type dlc does not know.  The types are `int`,
`float`, `bool`, `str`, lists of them, and enums (`{"relu", "gelu"}`).

    block FFN(d: integer) { ... }           # error: unknown parameter type `integer`

Fix: use one of the known types (the hint names the closest).""",

    "DLC049": """\
A dimension of the model is used by a shape but given by no required input, so
the generated forward() could not know it.

Fix: declare an input whose shape carries that dimension, or make it a parameter.""",

    "DLC050": """\
A `-D NAME=VALUE` override names a parameter that no model in the file has.

    dlc compile specs/bert.dl -D head=5     # error: no model has a parameter `head`

Fix: use a parameter of the model (the hint names the closest).""",

    "DLC051": """\
A `tie` joins two parameters of different shapes; tied parameters share one
tensor, so their shapes must be the same.

    embed = Embedding(vocab, d_model)       # weight [vocab, d_model]
    generator = Linear(vocab, d_model)      # weight [d_model, vocab]: arguments swapped
    tie generator.weight = embed.weight     # error: [d_model, vocab] vs [vocab, d_model]

Fix: make the shapes agree (`Linear(d_model, vocab)`).""",

    "DLC060": """\
`dlc check --tp N` plans tensor parallelism from the block structure: column-parallel
projections split their output features N ways, row-parallel ones their input
features, vocab-parallel embeddings their vocabulary.  A size that N does not divide
cannot be sharded evenly.

    dlc check specs/gpt2.dl --tp 5          # error: 768 features do not divide by 5

Fix: choose a degree that divides the sizes (the hint lists the degrees that do), or
change the layer's size.""",
}
