"""Runtime helpers of generated modules, as real (linted, tested) Python.

Generated code never imports dlc: codegen reads this file as text (codegen/helpers.py)
and copies the definitions a generated module uses into it.  The compiler never imports
this module, so it may import torch.  Every top-level name here is reserved in
generated code (names.py).
"""
import math
import re

import torch
from torch import nn
from torch.nn import functional as F


def rename_reference_keys(model: nn.Module, state_dict: dict) -> dict:
    """Rename a reference checkpoint's keys to `model`'s.  Each submodule's REFERENCE_RENAMES
    apply to the keys under it, outermost submodule first: the first rule whose prefix
    matches renames a key, and `{name}` placeholders match one dotted component; keys no rule
    matches keep their names.  Tensors it lists in REFERENCE_TRANSPOSED (stored [in, out] by
    the reference) are transposed."""
    for path, module in model.named_modules():
        prefix = f"{path}." if path else ""
        rules = []
        for source, target in getattr(module, "REFERENCE_RENAMES", ()):
            parts = re.split(r"\{(\w+)\}", source)
            pattern = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>[^.]+)" for i, p in enumerate(parts))
            rules.append((re.compile(re.escape(prefix) + pattern), prefix + target))
        renamed = {}
        for key, value in state_dict.items():
            for pattern, target in rules:
                match = pattern.match(key)
                if match:
                    key = target.format(**match.groupdict()) + key[match.end():]
                    break
            renamed[key] = value
        for name in getattr(module, "REFERENCE_TRANSPOSED", ()):
            if isinstance(renamed.get(prefix + name), torch.Tensor):
                renamed[prefix + name] = renamed[prefix + name].t()
        state_dict = renamed
    return state_dict


class ReferenceCheckpointMixin:
    """Loading of checkpoints of the reference implementation (HF transformers, torchvision)."""

    def load_reference_state_dict(self, state_dict: dict, strict: bool = True):
        """Load a checkpoint of the reference implementation, renaming its keys."""
        return self.load_state_dict(rename_reference_keys(self, state_dict), strict=strict)


def join_fused_keys(fused: dict[str, tuple[str, ...]]):
    """A load_state_dict pre-hook: checkpoints of separate layers load into the fused layer
    that replaced them, their weights and biases concatenated along dim 0 in order."""

    def hook(module, state_dict, prefix, *args):
        for target, sources in fused.items():
            for name in ("weight", "bias"):
                keys = [f"{prefix}{source}.{name}" for source in sources]
                if all(key in state_dict for key in keys):
                    state_dict[f"{prefix}{target}.{name}"] = torch.cat([state_dict.pop(key) for key in keys])

    return hook


class SinusoidalPositions(nn.Module):
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
        return x + self.table[: x.shape[1]].to(x.dtype)


class RelativePositionBias(nn.Module):
    """T5's relative position bias (Raffel et al., 2020): a learned scalar per head for each
    bucket of key-minus-query offsets, as [1, heads, query_length, key_length] to add to scores.
    `weight` [num_buckets, heads] has nn.Embedding's layout."""

    def __init__(self, num_buckets: int, max_distance: int, heads: int, bidirectional: bool) -> None:
        super().__init__()
        self.num_buckets = num_buckets
        self.max_distance = max_distance
        self.bidirectional = bidirectional
        self.weight = nn.Parameter(torch.randn(num_buckets, heads))

    def bucket(self, offset: torch.Tensor) -> torch.Tensor:
        """Bucket of each offset: exact below max_exact, logarithmic up to max_distance, then clipped."""
        num_buckets = self.num_buckets
        if self.bidirectional:  # half the buckets for keys before the query, half for keys after
            num_buckets //= 2
            buckets = (offset > 0).long() * num_buckets
            distance = offset.abs()
        else:  # a decoder sees only the past
            buckets = torch.zeros_like(offset)
            distance = (-offset).clamp(min=0)
        max_exact = num_buckets // 2
        # Clamped so the logarithm stays finite where the exact bucket is used instead.
        log_ratio = torch.log(distance.clamp(min=max_exact).float() / max_exact) / math.log(self.max_distance / max_exact)
        log_bucket = (max_exact + (log_ratio * (num_buckets - max_exact)).long()).clamp(max=num_buckets - 1)
        return buckets + torch.where(distance < max_exact, distance, log_bucket)

    def forward(self, query_length: int, key_length: int) -> torch.Tensor:
        device = self.weight.device
        offset = torch.arange(key_length, device=device)[None, :] - torch.arange(query_length, device=device)[:, None]
        return F.embedding(self.bucket(offset), self.weight).permute(2, 0, 1).unsqueeze(0)


def fold_conv_bn(model: nn.Module) -> None:
    """Fold each batch norm a submodule lists in CONV_BN_FOLDS into the convolution before it: in
    eval mode a batch norm is a per-channel scale and shift, which the convolution's weight and
    bias absorb.  The batch norm becomes nn.Identity, so forward runs unchanged.  A class lists
    the pairs of every configuration it builds; those this instance lacks are skipped."""
    for module in list(model.modules()):
        for conv, norm in getattr(module, "CONV_BN_FOLDS", ()):
            if isinstance(getattr(module, norm, None), nn.BatchNorm2d) and hasattr(module, conv):
                setattr(module, conv, nn.utils.fuse_conv_bn_eval(getattr(module, conv), getattr(module, norm)))
                setattr(module, norm, nn.Identity())


def packed_linear_available() -> bool:
    """Whether this torch has oneDNN's packed-weight linear kernels (private ops of its CPU build)."""
    mkldnn = torch.ops.mkldnn
    return (torch.backends.mkldnn.is_available() and hasattr(mkldnn, "_reorder_linear_weight")
            and hasattr(mkldnn, "_linear_pointwise"))


class PackedLinear(nn.Module):
    """An inference-only linear layer on CPU: oneDNN's kernel with the weight reordered once into
    its preferred blocked layout, rather than on every call.  Inputs that kernel does not cover
    (another device or dtype, autograd, torch.compile and torch.export tracing) run `layer`."""

    def __init__(self, layer: nn.Module, transposed: bool = False) -> None:
        super().__init__()
        self.layer = layer
        self.transposed = transposed  # layer.weight is [in_features, out_features]
        self.pack()

    def pack(self) -> None:
        """Reorder the layer's weight.  A plain attribute, not a buffer: the opaque oneDNN tensor
        cannot be moved, cast, copied or saved, so .to() and state_dict() leave it out."""
        weight = self.layer.weight.detach()
        weight = weight.t() if self.transposed else weight  # [out_features, in_features]
        self.packed_weight = None
        if weight.device.type == "cpu" and weight.dtype == torch.float32:
            # The batch-size hint only tunes the layout; a large one serves small batches as well.
            self.packed_weight = torch.ops.mkldnn._reorder_linear_weight(weight, 1024)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.runs_packed(x):
            return torch.ops.mkldnn._linear_pointwise(x, self.packed_weight, self.layer.bias, "none", [], "")
        return self.layer(x)

    def runs_packed(self, x: torch.Tensor) -> bool:
        """Whether the packed kernel computes what `layer` would: CPU fp32 inference, untraced."""
        weight = self.layer.weight
        if self.packed_weight is None or torch.compiler.is_compiling():
            return False
        if torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad):
            return False  # the packed copy would not pass gradients to the weight
        return all(t.device.type == "cpu" and t.dtype == torch.float32 for t in (x, weight))

    def __getstate__(self) -> dict:
        return {**self.__dict__, "packed_weight": None}  # copies and pickles repack instead

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self.pack()


def pack_linear_layers(model: nn.Module, transposed: tuple[type, ...] = ()) -> None:
    """Wrap every CPU fp32 nn.Linear in a PackedLinear, and every layer of a `transposed` type (its
    weight is [in, out]); without oneDNN's kernels the model stays as it is."""
    if not packed_linear_available():
        return
    for module in list(model.modules()):
        if isinstance(module, PackedLinear):
            continue  # packed already
        for name, child in list(module.named_children()):
            linear = isinstance(child, (nn.Linear, *transposed))
            if linear and child.weight.device.type == "cpu" and child.weight.dtype == torch.float32:
                setattr(module, name, PackedLinear(child, isinstance(child, transposed)))
