"""`dlc explain` texts of the initialization codes (DLC070-DLC072)."""
from __future__ import annotations

INIT_EXPLANATIONS: dict[str, str] = {
    "DLC070": """\
An `init` statement names a scheme dlc does not know.  The schemes are torch.nn.init's:
normal, uniform, trunc_normal, xavier_uniform, xavier_normal, kaiming_uniform,
kaiming_normal, orthogonal, zeros, ones and constant.

    init Linear.weight = gaussian(std=0.02)     # error: no scheme `gaussian`

Fix: use one of the schemes (the hint names the closest): `normal(std=0.02)`.""",

    "DLC071": """\
An `init` scheme is given an argument it does not take, a value of the wrong type, or a
value it refuses (a negative std, uniform bounds in the wrong order, a kaiming mode other
than fan_in or fan_out), or a scheme that needs a matrix (xavier, kaiming, orthogonal
compute fans from two dimensions) is applied to a vector such as a bias.

    init Linear.weight = normal(sigma=0.02)     # error: normal takes mean, std
    init Linear.bias = xavier_uniform           # error: a bias has one dimension

Fix: use the scheme's own argument names (torch.nn.init's), or another scheme.""",

    "DLC072": """\
An `init` statement names a layer, an op or a parameter that the block does not have.
The target is either `Op.parameter` (every layer of that op in the block and in the
blocks inside it: `Linear.weight`, `LayerNorm.bias`) or a path to one layer's parameter
(`output.weight`, `attention.output.weight`, `blocks.feed_forward.output.weight`, where
a repeat's name stands for each of its layers); a `Parameter` layer is named alone.

    init Linear.wieght = zeros                  # error: Linear has weight, bias
    init outptu.weight = zeros                  # error: no layer `outptu`

Fix: correct the name (the hint lists the layers or parameters there are).""",
}
