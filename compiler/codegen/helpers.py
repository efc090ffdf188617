"""Helper definitions emitted into generated files that need them.

Generated code never imports dlc, so anything an op's lowering relies on
beyond torch is written out here and copied into the file, once.
"""

HELPERS = {
    "rename_reference_keys": '''def rename_reference_keys(state_dict: dict, renames: list[tuple[str, str]]) -> dict:
    """Rename checkpoint keys by the first rule whose prefix matches; `{name}`
    placeholders match one dotted component.  Keys no rule matches keep their names."""
    rules = []
    for source, target in renames:
        parts = re.split(r"\\{(\\w+)\\}", source)
        pattern = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>[^.]+)" for i, p in enumerate(parts))
        rules.append((re.compile(pattern), target))
    renamed = {}
    for key, value in state_dict.items():
        for pattern, target in rules:
            match = pattern.match(key)
            if match:
                key = target.format(**match.groupdict()) + key[match.end():]
                break
        renamed[key] = value
    return renamed''',
    "SinusoidalPositions": '''class SinusoidalPositions(nn.Module):
    """Adds the fixed sine/cosine position table of Vaswani et al. (2017) to x [B, S, dim]."""

    def __init__(self, max_len: int, dim: int) -> None:
        super().__init__()
        position = torch.arange(max_len, dtype=torch.float32).unsqueeze(1)
        frequency = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
        table = torch.zeros(max_len, dim)
        table[:, 0::2] = torch.sin(position * frequency)
        table[:, 1::2] = torch.cos(position * frequency[: dim // 2])
        # Not persistent: the table is a function of the shape, not a weight.
        self.register_buffer("table", table, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.table[: x.shape[1]].to(x.dtype)''',
    "TransposedLinear": '''class TransposedLinear(nn.Module):
    """y = x @ weight + bias with weight stored [in_features, out_features] (GPT-2's Conv1D layout)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        nn.init.normal_(self.weight, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.bias is None:
            return x @ self.weight
        return torch.addmm(self.bias, x.flatten(0, -2), self.weight).unflatten(0, x.shape[:-1])''',
}
