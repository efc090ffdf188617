"""Runtime helpers of generated modules, as real (linted, tested) Python.

Generated code never imports dlc: codegen reads this file as text (codegen/helpers.py)
and copies the definitions a generated module uses into it.  The compiler never imports
this module, so it may import torch.  Every top-level name here is reserved in
generated code (names.py).
"""
import functools
import math
import re
import time

import torch
from torch import nn
from torch.nn import functional as F


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round a channel count to a multiple of `divisor`, never below it and never more than 10%
    down: the rounding of MobileNet's width multiplier (the DSL's `make_divisible`)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def rename_reference_keys(model: nn.Module, state_dict: dict) -> dict:
    """Rename a reference checkpoint's keys to `model`'s.  Each submodule's REFERENCE_RENAMES
    apply to the keys under it, outermost submodule first: the first rule whose prefix
    matches renames a key, and a `{name}` placeholder matches within one dotted component;
    a rule with a third entry reshapes the tensors it renames.  Keys no rule matches keep
    their names.  The weights of a submodule's layers that REFERENCE_TRANSPOSED_OPS names (its
    LAYER_OPS: stored [in, out] by the reference) are transposed."""
    for path, module in model.named_modules():
        prefix = f"{path}." if path else ""
        rules = []
        for source, target, *shape in getattr(module, "REFERENCE_RENAMES", ()):
            parts = re.split(r"\{(\w+)\}", source)
            pattern = "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>[^.]+)" for i, p in enumerate(parts))
            rules.append((re.compile(re.escape(prefix) + pattern), prefix + target, shape))
        renamed = {}
        for key, value in state_dict.items():
            for pattern, target, shape in rules:
                match = pattern.match(key)
                if match:
                    key = target.format(**match.groupdict()) + key[match.end():]
                    if shape and value is not None:
                        value = value.reshape(shape[0])
                    break
            renamed[key] = value
        for name in (f"{layer}.{parameter}" for layer, op in getattr(module, "LAYER_OPS", ())
                     for parameter in REFERENCE_TRANSPOSED_OPS.get(op, ())):
            if isinstance(renamed.get(prefix + name), torch.Tensor):
                renamed[prefix + name] = renamed[prefix + name].t()
        state_dict = renamed
    return state_dict


# The ops whose reference checkpoints store a parameter transposed ([in, out]: GPT-2's Conv1D
# layout), as the op registry's `reference_transposed` says (a test holds them equal): a block's
# layers of these ops (its LAYER_OPS) load those tensors transposed.  Defined after the function
# that reads it: a module of copied helpers must not open with a constant (isort spaces it apart).
REFERENCE_TRANSPOSED_OPS = {"TransposedLinear": ("weight",)}


class ReferenceCheckpointMixin:
    """Loading of checkpoints of the reference implementation (HF transformers, torchvision)."""

    def load_reference_state_dict(self, state_dict: dict, strict: bool = True):
        """Load a checkpoint of the reference implementation, renaming its keys."""
        return self.load_state_dict(rename_reference_keys(self, state_dict), strict=strict)


def join_fused_keys(fused: dict[str, tuple[tuple[str, int], ...]]):
    """A load_state_dict pre-hook: checkpoints of separate layers load into the fused layer
    that replaced them, their weights and biases concatenated along dim 0 in order.  Each
    separate tensor must have its own layer's rows, as the unfused model would require."""

    def hook(module, state_dict, prefix, *args):
        for target, sources in fused.items():
            for name in ("weight", "bias"):
                keys = [f"{prefix}{source}.{name}" for source, _ in sources]
                if not all(key in state_dict for key in keys):
                    continue
                for key, (_, rows) in zip(keys, sources):
                    if state_dict[key].dim() == 0 or state_dict[key].shape[0] != rows:
                        raise RuntimeError(f"size mismatch for {key}: copying a param with shape "
                                           f"{tuple(state_dict[key].shape)} from checkpoint, the layer has {rows} rows")
                state_dict[f"{prefix}{target}.{name}"] = torch.cat([state_dict.pop(key) for key in keys])

    return hook


def apply_rotary(x: torch.Tensor, heads: int | None = None, theta: float = 10000.0, interleaved: bool = False,
                 scaling: float = 1.0, rotary_dim: int | None = None,
                 positions: torch.Tensor | None = None, head_dim: int | None = None, start: int = 0) -> torch.Tensor:
    """Rotary position embedding of x [B, T, heads * head_dim] (Su et al., 2021).  Pairs of each
    head's first `rotary_dim` features turn by position * theta ** (-2i / rotary_dim), the angles
    computed in float32 as HF's LlamaRotaryEmbedding does; positions [B, T] default to
    start..start+T-1 (start: the positions a decoding cache holds already).  Give the head size
    rather than the count where x may hold some of the heads only (sharded)."""
    length = x.shape[1]
    x = x.unflatten(-1, (-1, head_dim) if head_dim else (heads, -1))  # [B, T, heads, head_dim]
    dim = rotary_dim or x.shape[-1]
    exponents = torch.arange(0, dim, 2, dtype=torch.int64, device=x.device).float() / dim
    inv_freq = 1.0 / (theta ** exponents) / scaling
    if positions is None:
        positions = torch.arange(start, start + length, device=x.device)[None]
    elif positions.dim() == 1:       # one row of positions for every example
        positions = positions[None]
    angles = positions.float()[..., None] * inv_freq                  # [B | 1, T, dim / 2]
    cos, sin = angles.cos().to(x.dtype)[:, :, None], angles.sin().to(x.dtype)[:, :, None]
    rotated, rest = x[..., :dim], x[..., dim:]
    if interleaved:  # GPT-J: features 2i and 2i + 1 form a pair
        even, odd = rotated[..., 0::2], rotated[..., 1::2]
        rotated = torch.stack((even * cos - odd * sin, odd * cos + even * sin), dim=-1).flatten(-2)
    else:  # HF Llama's rotate_half: features i and i + dim / 2 form a pair
        first, second = rotated.chunk(2, dim=-1)
        rotated = torch.cat((first * cos - second * sin, second * cos + first * sin), dim=-1)
    return torch.cat((rotated, rest), dim=-1).flatten(-2) if rest.shape[-1] else rotated.flatten(-2)


def stochastic_depth(x: torch.Tensor, p: float, mode: str, training: bool) -> torch.Tensor:
    """torchvision.ops.stochastic_depth: in training, zero x for each sample (mode "row") or for
    the whole batch ("batch") with probability p, scaling what survives by 1 / (1 - p)."""
    if not training or p == 0.0:
        return x
    survival = 1.0 - p
    shape = [x.shape[0]] + [1] * (x.dim() - 1) if mode == "row" else [1] * x.dim()
    noise = torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(survival)
    if survival > 0.0:
        noise.div_(survival)
    return x * noise


class SinusoidalPositions(nn.Module):
    """Adds the fixed sine/cosine position table of Vaswani et al. (2017) to x [B, S, dim]."""

    def __init__(self, max_len: int, dim: int) -> None:
        super().__init__()
        # Not persistent: the table is a function of the shape, not a weight.
        self.register_buffer("table", torch.zeros(max_len, dim), persistent=False)
        self.reset_buffers()

    def reset_buffers(self) -> None:
        """Compute the table (again): a model built on the meta device and moved with `to_empty()`
        holds uninitialized memory here, and checkpoints do not carry it."""
        max_len, dim = self.table.shape
        position = torch.arange(max_len, dtype=torch.float32, device=self.table.device).unsqueeze(1)
        frequency = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32, device=self.table.device)
                              * (-math.log(10000.0) / dim))
        with torch.no_grad():
            self.table[:, 0::2] = torch.sin(position * frequency)
            self.table[:, 1::2] = torch.cos(position * frequency[: dim // 2])

    def forward(self, x: torch.Tensor, start: int = 0) -> torch.Tensor:
        """x plus the positions start..start+S-1 (start: those a decoding cache holds already)."""
        return x + self.table[start:start + x.shape[1]].to(x.dtype)


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

    def reset_parameters(self) -> None:
        """PyTorch's default for an embedding table: N(0, 1)."""
        nn.init.normal_(self.weight)

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

    def forward(self, query_length: int, key_length: int, past: int = 0) -> torch.Tensor:
        """The bias of queries at positions past..past+query_length-1 over keys at 0..past+key_length-1
        (past: the positions a decoding cache holds, whose keys come first)."""
        device = self.weight.device
        queries = torch.arange(past, past + query_length, device=device)
        offset = torch.arange(past + key_length, device=device)[None, :] - queries[:, None]
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


def packed_linear_kernels() -> tuple[str, ...]:
    """The packed-weight linear kernels of this torch build (private ops of its CPU build): oneDNN's
    and MKL's.  Either may be faster or slower than the plain layer (MKL's sgemm), by CPU and shape."""
    kernels = []
    mkldnn, mkl = torch.ops.mkldnn, torch.ops.mkl
    if torch.backends.mkldnn.is_available() and all(
            hasattr(mkldnn, op) for op in ("_reorder_linear_weight", "_linear_pointwise")):
        kernels.append("onednn")
    if torch.backends.mkl.is_available() and hasattr(mkl, "_mkl_reorder_linear_weight") and hasattr(mkl, "_mkl_linear"):
        kernels.append("mkl")
    return tuple(kernels)


def packed_linear_available() -> bool:
    """Whether any packed-weight linear kernel exists here."""
    return bool(packed_linear_kernels())


class PackedLinear(nn.Module):
    """An inference-only linear layer on CPU: `kernel` ("onednn" or "mkl") with the weight reordered
    once into that library's packed layout, rather than on every call.  Inputs the kernel does not
    cover (another device or dtype, autograd, torch.compile and torch.export tracing, and for MKL a
    row count other than the one it was packed for) run `layer`."""

    def __init__(self, layer: nn.Module, transposed: bool = False, kernel: str = "onednn", rows: int = 1024) -> None:
        super().__init__()
        self.layer = layer
        self.transposed = transposed  # layer.weight is [in_features, out_features]
        self.kernel = kernel
        self.rows = rows  # the row count (batch x sequence) it was measured and packed for
        self.pack()

    def pack(self) -> None:
        """Reorder the layer's weight.  A plain attribute, not a buffer: the opaque packed tensor
        cannot be moved, cast, copied or saved, so .to() and state_dict() leave it out."""
        weight = self.layer.weight.detach()
        weight = weight.t() if self.transposed else weight  # [out_features, in_features]
        self.packed_weight = None
        if weight.device.type == "cpu" and weight.dtype == torch.float32:
            if self.kernel == "mkl":
                self.packed_weight = torch.ops.mkl._mkl_reorder_linear_weight(weight.contiguous(), self.rows)
            else:
                self.packed_weight = torch.ops.mkldnn._reorder_linear_weight(weight, self.rows)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.runs_packed(x):
            return self.layer(x)
        if self.kernel == "onednn":
            return torch.ops.mkldnn._linear_pointwise(x, self.packed_weight, self.layer.bias, "none", [], "")
        rows = x.flatten(0, -2)
        if rows.shape[0] != self.rows:  # MKL's packed GEMM is for one row count
            return self.layer(x)
        weight = self.layer.weight.t() if self.transposed else self.layer.weight
        out = torch.ops.mkl._mkl_linear(rows, self.packed_weight, weight, self.layer.bias, self.rows)
        return out.unflatten(0, x.shape[:-1])

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


# Rows of a linear layer's input when no example inputs say otherwise: batch 8 x sequence 128.
DEFAULT_ROWS = 1024
# A packed kernel replaces the plain layer only when it is at least this much faster, measured.
KEEP_MARGIN = 0.97


def median_seconds(candidates: dict, budget_s: float = 0.25, rounds: tuple[int, int] = (5, 25),
                   grad: bool = False, setup: dict | None = None) -> dict:
    """Median wall time of each callable, run in interleaved rounds (interleaved_samples)."""
    samples = interleaved_samples(candidates, budget_s, rounds, grad, setup)
    return {name: sorted(times)[len(times) // 2] for name, times in samples.items()}


def fastest_seconds(candidates: dict, budget_s: float = 0.25, rounds: tuple[int, int] = (5, 25),
                    setup: dict | None = None, grad: bool = False) -> dict:
    """Fastest wall time of each callable, run in interleaved rounds (interleaved_samples): on a
    machine others share, a call is slowed (preempted, its cache evicted), never sped up, so the
    minimum is the figure a busy neighbour disturbs least; a median flips between kernels that
    differ by less than the noise of a loaded machine."""
    samples = interleaved_samples(candidates, budget_s, rounds, grad, setup)
    return {name: min(times) for name, times in samples.items()}


def ranked_times(times: dict) -> str:
    """Measured seconds per candidate, fastest first, as the summaries print them."""
    return ", ".join(f"{name} {seconds * 1e3:.2f} ms" for name, seconds in sorted(times.items(), key=lambda i: i[1]))


def interleaved_samples(candidates: dict, budget_s: float = 0.25, rounds: tuple[int, int] = (5, 25),
                        grad: bool = False, setup: dict | None = None) -> dict:
    """Wall seconds of each call of each callable, run in interleaved rounds (rotating the order, so
    no candidate always follows the same other one) after one warm-up call each: at least
    rounds[0] rounds, then more until budget_s is spent or rounds[1] are done.  In inference mode,
    unless `grad` (calls that run a backward pass).  `setup` (name -> callable) runs, untimed,
    before each call of that candidate: what puts the model in the state the candidate measures.
    It runs outside inference mode, as that state outlasts the measuring: a weight converted
    inside would become an inference tensor, which autograd cannot save for backward."""
    samples = {name: [] for name in candidates}
    names = list(candidates)
    prepare = setup or {}
    sync = torch.cuda.synchronize if torch.cuda.is_initialized() else (lambda: None)  # GPU work is asynchronous
    def prepared(name: str) -> None:
        if name in prepare:
            with torch.inference_mode(False):
                prepare[name]()

    with torch.inference_mode(not grad):
        for name, fn in candidates.items():
            prepared(name)
            fn()
        start = time.perf_counter()
        for r in range(rounds[1]):
            for name in names[r % len(names):] + names[:r % len(names)]:
                prepared(name)
                sync()
                begin = time.perf_counter()
                candidates[name]()
                sync()
                samples[name].append(time.perf_counter() - begin)
            if r + 1 >= rounds[0] and time.perf_counter() - start > budget_s:
                break
    return samples


def first_inputs(model: nn.Module, modules: list, example_inputs: tuple, describe) -> dict:
    """id(module) -> describe(its first input tensor) at its first call in one forward of
    `example_inputs`: what a kernel choice needs to know of the inputs each layer really sees."""
    seen, hooks = {}, []

    def record(module: nn.Module, args: tuple) -> None:
        seen.setdefault(id(module), describe(args[0]))

    for module in modules:
        hooks.append(module.register_forward_pre_hook(record))
    try:
        with torch.inference_mode():
            model(*example_inputs)
    finally:
        for hook in hooks:
            hook.remove()
    return seen


def linear_rows(model: nn.Module, layers: list, example_inputs: tuple) -> dict:
    """Row count (batch x sequence) each layer sees in one forward of `example_inputs`."""
    return first_inputs(model, [layer for _, _, layer in layers], example_inputs,
                        lambda x: x.numel() // x.shape[-1])


def choose_linear_kernels(model: nn.Module, example_inputs: tuple = (), kernels: str = "measure",
                          transposed: tuple[type, ...] = ()) -> list[str]:
    """Give each CPU fp32 linear layer (and each layer of a `transposed` type, weight [in, out]) the
    fastest kernel for its shape on this machine: the plain layer, or a packed one (PackedLinear).
    `kernels="measure"` times the candidates once per distinct shape (on random inputs with the
    row counts `example_inputs` produce, else DEFAULT_ROWS) and keeps a packed kernel only when it
    beats the plain layer by 3%; "plain" keeps every layer; a kernel's name forces it where it
    exists.  Returns one line per shape saying what was chosen and why."""
    available = packed_linear_kernels() if packed_linear_available() else ()
    # A layer inside a packed module (PackedLinear, a fused kernel's fallback) is that module's own.
    layers = [(parent, name, child) for parent in list(model.modules()) if not hasattr(parent, "packed_weight")
              for name, child in parent.named_children() if isinstance(child, (nn.Linear, *transposed))
              and child.weight.device.type == "cpu" and child.weight.dtype == torch.float32]
    if not layers:
        return []
    rows = linear_rows(model, layers, example_inputs) if example_inputs else {}
    groups: dict = {}
    for parent, name, child in layers:
        flipped = isinstance(child, transposed)
        in_features, out_features = child.weight.shape[::-1] if not flipped else child.weight.shape
        key = (in_features, out_features, child.bias is not None, flipped, rows.get(id(child), DEFAULT_ROWS))
        groups.setdefault(key, []).append((parent, name, child))
    summary = []
    for (in_features, out_features, bias, flipped, count), members in groups.items():
        chosen, why = choose_linear_kernel(members[0][2], flipped, count, kernels, available)
        for parent, name, child in members:
            if chosen != "plain":
                setattr(parent, name, PackedLinear(child, flipped, chosen, count))
        summary.append(f"linear {in_features}->{out_features}{'' if bias else ' (no bias)'}, {count} rows, "
                       f"{len(members)} layer(s): {chosen} ({why})")
    return summary


def choose_linear_kernel(layer: nn.Module, flipped: bool, rows: int, kernels: str, available: tuple) -> tuple:
    """(kernel, reason) for one layer shape; see choose_linear_kernels."""
    if not available:
        return "plain", "no packed kernel in this torch build"
    if kernels in ("plain", "fused"):  # "fused" asks for the fused epilogues (fusion.py), plain layers otherwise
        return "plain", f"asked for {kernels}"
    if kernels != "measure":
        chosen = kernels if kernels in available else "plain"
        return chosen, f"asked for {kernels}" + ("" if chosen == kernels else ", which this build lacks")
    x = torch.randn(rows, layer.weight.shape[0 if flipped else 1])
    candidates = {"plain": lambda: layer(x)}
    for kernel in available:
        candidates[kernel] = functools.partial(PackedLinear(layer, flipped, kernel, rows), x)
    times = median_seconds(candidates)
    best = min(times, key=times.get)
    if best != "plain" and times[best] > KEEP_MARGIN * times["plain"]:
        best = "plain"
    return best, f"measured {ranked_times(times)}"


class OneDNNLinear(nn.Linear):
    """A linear layer whose forward and backward GEMMs run on oneDNN, on the weight as it is (no
    packed copy: training changes it every step).  The same module otherwise: its parameters,
    state_dict keys and checkpoints are nn.Linear's, so choose_training_kernels turns a layer into
    one by its class alone, and back.  Inputs oneDNN does not cover here (another device or dtype,
    autocast, torch.compile and torch.export tracing) run nn.Linear's forward."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not onednn_gemm_covers(x, self.weight):
            return super().forward(x)
        return OneDNNLinearFunction.apply(x, self.weight, self.bias)


def onednn_gemm_covers(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """Whether OneDNNLinearFunction computes what F.linear would for these tensors."""
    if torch.compiler.is_compiling() or torch.is_autocast_enabled(x.device.type):
        return False
    return all(t.device.type == "cpu" and t.dtype == torch.float32 for t in (x, weight))


class OneDNNLinearFunction(torch.autograd.Function):
    """x @ weight.T + bias with oneDNN's GEMM, and its gradients (dx = g @ weight, dweight = g.T @
    x, dbias = the sum of g over rows) with the same GEMM on transposed views: no copies."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        rows = x.reshape(-1, x.shape[-1])
        out = torch.ops.mkldnn._linear_pointwise(rows, weight, bias, "none", [], "")
        return out.reshape(*x.shape[:-1], weight.shape[0])

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor):
        x, weight = ctx.saved_tensors
        g = grad.reshape(-1, grad.shape[-1])
        dx = dweight = dbias = None
        if ctx.needs_input_grad[0]:
            dx = torch.ops.mkldnn._linear_pointwise(g, weight.t(), None, "none", [], "").reshape(x.shape)
        if ctx.needs_input_grad[1]:
            rows = x.reshape(-1, x.shape[-1])
            dweight = torch.ops.mkldnn._linear_pointwise(g.t(), rows.t(), None, "none", [], "")
        if ctx.has_bias and ctx.needs_input_grad[2]:
            dbias = g.sum(0)
        return dx, dweight, dbias


def choose_training_kernels(model: nn.Module, example_inputs: tuple = (), kernels: str = "measure") -> list[str]:
    """Run each CPU fp32 linear layer's forward and backward GEMMs on the faster library for its
    shape on this machine: torch's (MKL on CPU) or oneDNN's (OneDNNLinear).  oneDNN measured 1.9-2.3
    times faster than MKL on an AVX-512 AMD EPYC (Zen 5), where MKL keeps to its AVX2 kernels, and
    slower on an AVX2 Zen 3.  `kernels="measure"` times one forward + backward of both per distinct
    shape (the row counts `example_inputs` produce, else DEFAULT_ROWS), checks that oneDNN's output
    and gradients match, and keeps oneDNN only when it is 3% faster; "onednn" and "plain" choose
    without measuring.  The parameters stay the same tensors (an optimizer built before keeps
    working) and checkpoints load as before.  Returns one line per shape saying what was chosen."""
    layers = [(parent, name, child) for parent in list(model.modules()) for name, child in parent.named_children()
              if type(child) in (nn.Linear, OneDNNLinear) and child.weight.device.type == "cpu"
              and child.weight.dtype == torch.float32]
    if not layers:
        return []
    if "onednn" not in packed_linear_kernels():
        return ["linear layers: torch's kernels (this torch build has no oneDNN linear kernel)"]
    rows = linear_rows(model, layers, example_inputs) if example_inputs else {}
    groups: dict = {}
    for parent, name, child in layers:
        key = (child.in_features, child.out_features, child.bias is not None, rows.get(id(child), DEFAULT_ROWS))
        groups.setdefault(key, []).append(child)
    summary = []
    for (in_features, out_features, bias, count), members in groups.items():
        chosen, why = choose_training_kernel(members[0], count, kernels)
        for layer in members:
            layer.__class__ = OneDNNLinear if chosen == "onednn" else nn.Linear
        summary.append(f"linear {in_features}->{out_features}{'' if bias else ' (no bias)'}, {count} rows, "
                       f"{len(members)} layer(s): {chosen} ({why})")
    return summary


def choose_training_memory_format(model: nn.Module, example_inputs: tuple = (), kernels: str = "measure") -> list[str]:
    """Channels-last convolution weights for training, kept only when one forward + backward of
    `example_inputs` measures faster (ResNet-50 on the AVX-512 Zen 5: 0.67 s against 0.80-0.83 s).
    Without example inputs, or with kernels="plain", the layout is left as it is.  The measuring
    leaves the model as it found it: the gradients go to torch.autograd.grad, not to .grad, and
    the buffers (batch norms' running statistics) and the random number generator's state are
    restored after it."""
    if kernels == "plain" or not example_inputs:
        why = "asked for plain" if kernels == "plain" else "not measured: no example inputs"
        return [f"convolution weights' layout unchanged ({why})"]
    parameters = [p for p in model.parameters() if p.requires_grad]
    if not parameters:
        return ["convolution weights' layout unchanged (no parameter needs a gradient)"]
    buffers = [(b, b.clone()) for b in model.buffers()]
    rng = torch.get_rng_state()

    def step() -> None:
        outputs = [t.float().sum() for t in _output_tensors(model(*example_inputs)) if t.requires_grad]
        if outputs:
            torch.autograd.grad(sum(outputs), parameters, allow_unused=True)

    try:
        return [channels_last_if_faster(model, step, grad=True, margin=KEEP_MARGIN)]
    finally:
        for buffer, saved in buffers:
            buffer.copy_(saved)
        torch.set_rng_state(rng)


def _output_tensors(out) -> list[torch.Tensor]:
    """The floating-point tensors in a model's result (a tensor, a tuple or named tuple, a dict)."""
    if isinstance(out, torch.Tensor):
        return [out] if out.is_floating_point() else []
    values = out.values() if isinstance(out, dict) else out if isinstance(out, (tuple, list)) else ()
    return [t for value in values for t in _output_tensors(value)]


def choose_training_kernel(layer: nn.Linear, rows: int, kernels: str) -> tuple[str, str]:
    """("onednn" or "plain", why) for one layer shape; see choose_training_kernels."""
    if kernels in ("onednn", "plain"):
        return kernels, f"asked for {kernels}"
    weight = layer.weight.detach().clone().requires_grad_()
    bias = layer.bias.detach().clone().requires_grad_() if layer.bias is not None else None
    x = torch.randn(rows, layer.in_features, requires_grad=True)
    g = torch.randn(rows, layer.out_features)

    def step(function) -> tuple:
        out = function(x, weight, bias)
        grads = torch.autograd.grad(out, [t for t in (x, weight, bias) if t is not None], g)
        return (out, *grads)

    candidates = {"plain": functools.partial(step, F.linear),
                  "onednn": functools.partial(step, OneDNNLinearFunction.apply)}
    with torch.enable_grad():
        first = {name: [t.detach() for t in fn()] for name, fn in candidates.items()}
    for mine, theirs in zip(first["onednn"], first["plain"]):
        if not torch.allclose(mine, theirs, rtol=1e-4, atol=1e-4 * float(theirs.abs().max()) + 1e-6):
            return "plain", "oneDNN's result or gradients differ from torch's"
    times = median_seconds(candidates, grad=True)
    chosen = "onednn" if times["onednn"] <= KEEP_MARGIN * times["plain"] else "plain"
    return chosen, f"forward + backward measured {ranked_times(times)}"


def choose_memory_format(model: nn.Module, example_inputs: tuple = ()) -> list[str]:
    """Channels-last convolution weights (inputs may stay NCHW: a convolution with channels-last
    weights returns channels-last activations).  With `example_inputs`, kept only when one forward
    of them measures faster; without, applied: 20-40% faster for ResNet-50, MobileNetV2 and VGG-16
    on the AVX2 and AVX-512 machines it was measured on (2 threads, batch 8)."""
    if not example_inputs:
        model.to(memory_format=torch.channels_last)
        return ["channels-last convolution weights (not measured: no example inputs)"]
    return [channels_last_if_faster(model, lambda: model(*example_inputs))]


def channels_last_if_faster(model: nn.Module, call, grad: bool = False, margin: float = 1.0) -> str:
    """Time `call` with the model's convolution weights contiguous and channels-last, in alternating
    rounds (the weights converted, untimed, before each call), and keep channels-last if its
    fastest call takes at most `margin` times as long as contiguous's (fastest_seconds); one
    summary line saying which.  Timed one layout after the other, two calls each and the median
    of two (the slower), one slow call decided it: on the AVX-512 Zen 4 ResNet-50's forward read
    channels-last 16% slower than contiguous that way (444 against 384 ms), 12% faster with the
    layouts alternating (335 against 382 ms).  A training step (`grad`) gets at least four rounds:
    with the three a one-second budget left ResNet-50's 0.8 s steps on the Zen 5, their median
    read the layouts level (774.7 against 772.0 ms) on a busy host, where channels-last is
    16-18% faster (776 against 927 ms, the fastest of eight steps each)."""
    layouts = {"channels-last": torch.channels_last, "contiguous": torch.contiguous_format}
    setup = {name: functools.partial(model.to, memory_format=layout) for name, layout in layouts.items()}
    candidates = {name: call for name in layouts}
    budget_s, rounds = (2.0, (4, 8)) if grad else (1.0, (3, 6))
    times = fastest_seconds(candidates, budget_s, rounds, setup=setup, grad=grad)
    last, contiguous = times["channels-last"], times["contiguous"]
    model.to(memory_format=torch.channels_last)
    measured = (f"{'forward + backward ' if grad else ''}measured channels-last {last * 1e3:.1f} ms, "
                f"contiguous {contiguous * 1e3:.1f} ms")
    if last <= margin * contiguous:
        return f"channels-last convolution weights ({measured})"
    model.to(memory_format=torch.contiguous_format)
    return f"contiguous convolution weights ({measured})"
