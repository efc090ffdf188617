"""Fused epilogues for inference on CPU: a convolution or linear layer, the batch norm folded into
it, and the activation and residual sum after it, as one oneDNN kernel on pre-packed weights.

The compiler says which layers form such a chain (the fuse-epilogues pass): a class lists
`EPILOGUES` entries (producer layer, folded batch norm or None, the `Epilogue` layer at the end,
activation, which input of a sum is the producer's or -1), and a block that is nothing but a
convolution, a batch norm and an activation says so in `CONV_EPILOGUE`.  `fuse_epilogues` measures
each chain's shape on this machine and keeps the fused kernel only where it wins.  Like
helpers.py, this file is copied into generated modules by name (codegen/helpers.py).
"""
import functools
import threading

import torch
from torch import nn
from torch.nn import functional as F

from dlc.runtime.helpers import (
    KEEP_MARGIN,
    PackedLinear,
    fastest_seconds,
    first_inputs,
    packed_linear_kernels,
    ranked_times,
)

# Activation kind -> oneDNN post-op (name, scalars, algorithm), as torch.ops.mkldnn spells them.
ONEDNN_POST_OPS = {"none": ("none", [], ""), "relu": ("relu", [], ""), "relu6": ("hardtanh", [0.0, 6.0], ""),
                   "silu": ("swish", [], ""), "gelu": ("gelu", [], "none"), "gelu_tanh": ("gelu", [], "tanh"),
                   "tanh": ("tanh", [], ""), "sigmoid": ("sigmoid", [], ""), "hardswish": ("hardswish", [], "")}


def activate(x: torch.Tensor, kind: str, inplace: bool = False) -> torch.Tensor:
    """The activation `kind` (the DSL's names) of x; in place where torch can and `inplace` asks."""
    if kind == "none":
        return x
    if kind in ("gelu", "gelu_tanh"):
        return F.gelu(x, approximate="tanh" if kind == "gelu_tanh" else "none")
    if kind in ("tanh", "sigmoid"):
        return getattr(torch, kind)(x)
    return getattr(F, kind)(x, inplace=inplace)


class InPlaceActivation(nn.Module):
    """GELU ("gelu" or "gelu_tanh") overwriting its input when no gradient needs that input: the
    layer ending a linear chain (fuse-epilogues) where the fused kernel was not chosen.  Its input
    is the linear layer's fresh result, read by nothing else, so no new tensor is needed: 12.6 MB
    less at the peak of each of BERT-base's FFNs (batch 8 x 128), and with glibc's default malloc
    fewer freshly mapped pages to fault in (BERT-base on AVX2 Zen 3, 1 thread: the bias copies
    into the FFN's GEMM output took 83 ms of CPU time a forward instead of 229; no change with
    the benchmark's GLIBC_TUNABLES, which keep freed memory mapped)."""

    def __init__(self, activation: str) -> None:
        super().__init__()
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and x.requires_grad:
            return activate(x, self.activation)  # autograd keeps GELU's input for its backward
        return torch.ops.aten.gelu_(x, approximate="tanh" if self.activation == "gelu_tanh" else "none")

    def extra_repr(self) -> str:
        return f"activation={self.activation!r}"


class ResidualActivation(nn.Module):
    """activation(a + b): the residual sum after a convolution, and the activation after it, as a
    layer optimize_for_inference() can swap for the convolution's fused kernel.  `inplace`: the sum
    overwrites `a` (nothing else reads it)."""

    def __init__(self, activation: str = "none", conv_operand: int = 0, inplace: bool = False) -> None:
        super().__init__()
        self.activation = activation
        self.conv_operand = conv_operand  # which input the convolution computes
        self.inplace = inplace

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        total = a.add_(b) if self.inplace else a + b
        return activate(total, self.activation, inplace=True)  # `total` is a fresh (or dead) tensor

    def extra_repr(self) -> str:
        return f"activation={self.activation!r}, inplace={self.inplace}"


def conv_epilogue_kernels() -> bool:
    """Whether this torch build has oneDNN's fused convolution kernels (private ops of its CPU build)."""
    mkldnn = torch.ops.mkldnn
    return torch.backends.mkldnn.is_available() and all(
        hasattr(mkldnn, op) for op in ("_convolution_pointwise", "_reorder_convolution_weight"))


def _inference_ready(x: torch.Tensor, weight: torch.Tensor) -> bool:
    """CPU fp32 inference, untraced: where a packed kernel computes what the plain layers would."""
    if torch.compiler.is_compiling():
        return False
    if torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad):
        return False  # the packed copy would not pass gradients to the weight
    return all(t.device.type == "cpu" and t.dtype == torch.float32 for t in (x, weight))


class FusedConv(nn.Module):
    """A convolution (batch norm folded in), the residual sum and the activation after it, as one
    oneDNN kernel on a weight reordered once for `input_size`.  Takes the inputs of the layer it
    replaces (the residual sum's two, or one); inputs it does not cover (another device or dtype,
    autograd, tracing) run the plain convolution and then `tail`, the replaced layer."""

    def __init__(self, conv: nn.Conv2d, activation: str, conv_operand: int = -1, input_size: tuple | None = None,
                 tail: nn.Module | None = None) -> None:
        super().__init__()
        self.conv, self.tail = conv, tail
        self.activation = activation
        self.conv_operand = conv_operand  # -1: no residual sum
        self.input_size = list(input_size) if input_size else None
        # Set by plan_overwrites(): the sum's other input dies here, so the kernel may add into its memory.
        self.overwrite = False
        self.pack()

    def pack(self) -> None:
        """Reorder the weight; a plain attribute (not a buffer: .to() and state_dict() leave it out)."""
        c, weight = self.conv, self.conv.weight.detach()
        self.packed_weight = None
        if weight.device.type == "cpu" and weight.dtype == torch.float32:
            self.packed_weight = torch.ops.mkldnn._reorder_convolution_weight(
                weight, list(c.padding), list(c.stride), list(c.dilation), c.groups, self.input_size)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        x = inputs[max(self.conv_operand, 0)]
        if self.packed_weight is None or x.dim() != 4 or not _inference_ready(x, self.conv.weight):
            return self.unfused(*inputs)
        c, bias = self.conv, self.conv.bias
        name, scalars, algorithm = ONEDNN_POST_OPS[self.activation]
        geometry = (list(c.padding), list(c.stride), list(c.dilation), c.groups)
        if self.conv_operand < 0:
            return torch.ops.mkldnn._convolution_pointwise(x, self.packed_weight, bias, *geometry, name, scalars,
                                                           algorithm)
        other = inputs[1 - self.conv_operand]
        unary = None if name == "none" else name
        if self.overwrite and _may_overwrite(other, x, c.out_channels):
            return torch.ops.mkldnn._convolution_pointwise_.binary(other, x, self.packed_weight, bias, *geometry, "add",
                                                                   1.0, unary, scalars, algorithm or None)
        return torch.ops.mkldnn._convolution_pointwise.binary(x, other, self.packed_weight, bias, *geometry, "add",
                                                              1.0, unary, scalars, algorithm or None)

    def unfused(self, *inputs: torch.Tensor) -> torch.Tensor:
        """The plain convolution, then what the replaced layers computed after it."""
        inputs = list(inputs)
        inputs[max(self.conv_operand, 0)] = self.conv(inputs[max(self.conv_operand, 0)])
        return self.tail(*inputs) if self.tail is not None else activate(inputs[0], self.activation, inplace=True)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "packed_weight": None}  # copies and pickles repack instead

    def __setstate__(self, state: dict) -> None:
        super().__setstate__({"overwrite": False, **state})
        self.pack()


class _Donations(threading.local):
    """Per thread, for each forward of a model with overwriting kernels now running (innermost last),
    whether its layers may overwrite the inputs donated to them."""

    def __init__(self) -> None:
        self.active: list[bool] = []


_DONATIONS = _Donations()


def _may_overwrite(other: torch.Tensor, x: torch.Tensor, channels: int) -> bool:
    """Whether the fused kernel may add into `other` now: inside a forward of the whole model (see
    plan_overwrites), with `other` a plain CPU fp32 activation laid out as the convolution's input."""
    if not (_DONATIONS.active and _DONATIONS.active[-1]) or torch.jit.is_tracing():
        return False
    if (torch.is_grad_enabled() and other.requires_grad) or (other.is_inference() and not torch.is_inference_mode_enabled()):
        return False
    return (other.device.type == "cpu" and other.dtype == torch.float32 and other.dim() == 4
            and other.shape[:2] == (x.shape[0], channels) and other.data_ptr() != x.data_ptr()
            and other.is_contiguous(memory_format=torch.channels_last) == x.is_contiguous(memory_format=torch.channels_last)
            and (other.is_contiguous() or other.is_contiguous(memory_format=torch.channels_last)))


def _hooks_anywhere(model: nn.Module) -> bool:
    """Whether a forward hook anywhere (global, or on a layer of `model`) may see an intermediate tensor."""
    from torch.nn.modules import module as torch_module
    if getattr(torch_module, "_global_forward_hooks", None) or getattr(torch_module, "_global_forward_pre_hooks", None):
        return True
    return any(layer._forward_hooks or layer._forward_pre_hooks for layer in model.modules() if layer is not model)


def _begin_donations(model: nn.Module, args: tuple) -> None:
    _DONATIONS.active.append(not _hooks_anywhere(model))


def _end_donations(model: nn.Module, args: tuple, output) -> None:
    if _DONATIONS.active:
        _DONATIONS.active.pop()


def _forward_inputs(module: nn.Module) -> list[str]:
    """The names of a module's forward() parameters, in order (without `self`)."""
    code = type(module).forward.__code__
    return list(code.co_varnames[1:code.co_argcount + code.co_kwonlyargcount])


def donated_sums(model: nn.Module) -> set[tuple[int, str]]:
    """(id(block), tail name) of each residual sum whose other input dies there (passes/donation.py):
    RESIDUAL_OVERWRITES says which sums and which of the block's inputs must be donated to it,
    DONATES which calls donate them.  Followed from `model` down (its own inputs are its caller's:
    never donated); a layer held in two places gets none.  Whatever layer the sum is now: the
    fused kernels are measured (_candidates) as they will run, before they are installed.  None
    where this torch build lacks the kernel that adds into its other input."""
    if not hasattr(torch.ops.mkldnn, "_convolution_pointwise_"):
        return set()
    holders: dict[int, int] = {}
    for _, layer in model.named_modules(remove_duplicate=False):
        holders[id(layer)] = holders.get(id(layer), 0) + 1
    donated: dict[int, set] = {id(model): set()}
    found = set()
    for module in model.modules():
        names = _forward_inputs(module) if holders[id(module)] == 1 else []
        given = {names[slot] for slot in donated.get(id(module), ()) if slot < len(names)}
        for layer, slot, condition in getattr(type(module), "DONATES", ()):
            child = getattr(module, layer, None)
            if isinstance(child, nn.Module) and set(condition) <= given:
                for target in (child if isinstance(child, nn.ModuleList) else [child]):
                    donated.setdefault(id(target), set()).add(slot)
        for tail, condition in getattr(type(module), "RESIDUAL_OVERWRITES", ()):
            end = getattr(module, tail, None)
            if isinstance(end, nn.Module) and holders[id(end)] == 1 and set(condition) <= given:
                found.add((id(module), tail))
    return found


def plan_overwrites(model: nn.Module) -> list[str]:
    """Let each fused residual kernel add into the memory of its sum's other input where the compiler
    proved that input dies there (donated_sums).  The kernels overwrite only inside a forward of
    `model` itself, and not while a forward hook is registered on any of its layers (it could keep
    an intermediate tensor)."""
    sums = donated_sums(model)
    enabled = 0
    for module in model.modules():
        for tail, _ in getattr(type(module), "RESIDUAL_OVERWRITES", ()):
            fused = getattr(module, tail, None)
            if isinstance(fused, FusedConv) and fused.conv_operand >= 0:
                fused.overwrite = (id(module), tail) in sums
                enabled += fused.overwrite
    if not enabled:
        return []
    if not getattr(model, "_donation_hooks", None):
        model._donation_hooks = (model.register_forward_pre_hook(_begin_donations),
                                 model.register_forward_hook(_end_donations, always_call=True))
    return [(f"residual sums added into their other input's memory, which dies there (argument donation): "
             f"{enabled} fused layer(s); only inside this model's forward, while no layer has a forward hook")]


class FusedLinearActivation(nn.Module):
    """A linear layer and the activation after it as one oneDNN kernel (the activation in the GEMM's
    epilogue) on a weight packed for `rows`; other inputs run the layer, then the activation."""

    def __init__(self, layer: nn.Linear, activation: str, rows: int) -> None:
        super().__init__()
        self.layer, self.activation, self.rows = layer, activation, rows
        self.pack()

    def pack(self) -> None:
        weight = self.layer.weight.detach()
        self.packed_weight = None
        if weight.device.type == "cpu" and weight.dtype == torch.float32:
            self.packed_weight = torch.ops.mkldnn._reorder_linear_weight(weight, self.rows)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.packed_weight is None or not _inference_ready(x, self.layer.weight):
            return activate(self.layer(x), self.activation)
        name, scalars, algorithm = ONEDNN_POST_OPS[self.activation]
        return torch.ops.mkldnn._linear_pointwise(x, self.packed_weight, self.layer.bias, name, scalars, algorithm)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "packed_weight": None}

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        self.pack()


def _conv_of(layer: nn.Module) -> nn.Conv2d | None:
    """The convolution a producer layer computes alone: the layer itself, or the folded convolution of
    a block that is nothing more (its CONV_EPILOGUE), when that block applies no activation."""
    if isinstance(layer, nn.Conv2d):
        return layer
    spec = getattr(type(layer), "CONV_EPILOGUE", None)
    if spec is None or spec[2] != "none" or not _folded(layer, spec[1]):
        return None
    conv = getattr(layer, spec[0], None)
    return conv if isinstance(conv, nn.Conv2d) else None


def _folded(module: nn.Module, norm: str | None) -> bool:
    """Whether the batch norm after a convolution is folded into it (an nn.Identity now), or absent
    (this configuration has none)."""
    return norm is None or not hasattr(module, norm) or isinstance(getattr(module, norm), nn.Identity)


def _plain_conv(conv: nn.Module) -> bool:
    return isinstance(conv, nn.Conv2d) and conv.padding_mode == "zeros" and not isinstance(conv.padding, str)


def epilogue_sites(model: nn.Module) -> list[tuple]:
    """(parent, producer name, layer, tail name or None, activation, conv operand) for every chain the
    classes list (EPILOGUES) and every block that is one (CONV_EPILOGUE), where this instance has it."""
    sites = []
    for parent in list(model.modules()):
        producers = set()
        for producer, norm, tail, activation, operand in getattr(parent, "EPILOGUES", ()):
            layer, end = getattr(parent, producer, None), getattr(parent, tail, None)
            if layer is None or end is None or not _folded(parent, norm):
                continue
            inner = layer if isinstance(layer, nn.Linear) and type(layer) is nn.Linear else _conv_of(layer)
            if inner is not None and (isinstance(inner, nn.Linear) or _plain_conv(inner)):
                sites.append((parent, producer, inner, tail, activation, operand))
                producers.add(producer)
        for name, child in parent.named_children():
            spec = getattr(type(child), "CONV_EPILOGUE", None)
            conv = getattr(child, spec[0], None) if spec else None
            if spec and name not in producers and _plain_conv(conv) and _folded(child, spec[1]):
                sites.append((parent, name, conv, None, spec[2], -1))
    return sites


def _input_layouts(model: nn.Module, sites: list[tuple], example_inputs: tuple) -> dict:
    """id(producer module) -> (shape, channels-last?) of its input in one forward of example_inputs."""
    def layout(x: torch.Tensor) -> tuple:
        return (tuple(x.shape), x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
                and not x.is_contiguous())

    return first_inputs(model, [getattr(parent, producer) for parent, producer, *_ in sites], example_inputs, layout)


def fuse_epilogues(model: nn.Module, example_inputs: tuple = (), kernels: str = "measure") -> list[str]:
    """Compute each chain the compiler found (convolution, folded batch norm, residual sum, activation;
    linear layer and activation) as one oneDNN kernel on pre-packed weights where that is faster here.
    `kernels="measure"` times the fused kernel against the plain layers once per distinct shape, on
    random inputs of the shapes `example_inputs` give each layer, and keeps it only when it wins by 3%
    (without example inputs nothing is fused); "fused" fuses every chain the kernels cover; any
    other value ("plain", a packed linear kernel's name) fuses none.  Returns one line per shape
    saying what was chosen and why.  Except with "plain", the activation after each linear layer
    left unfused then runs in place (InPlaceActivation)."""
    sites = [s for s in epilogue_sites(model) if s[2].weight.device.type == "cpu" and s[2].weight.dtype == torch.float32]
    if not sites:
        return []
    summary = _fuse_chosen(model, sites, example_inputs, kernels) + plan_overwrites(model)
    return summary + (activations_in_place(sites) if kernels != "plain" else [])


def activations_in_place(sites: list[tuple]) -> list[str]:
    """Give each linear chain still ending in its activation layer an InPlaceActivation there."""
    done: dict[str, int] = {}
    for parent, _, layer, tail, activation, _ in sites:
        if isinstance(layer, nn.Linear) and tail is not None and isinstance(getattr(parent, tail), nn.GELU):
            setattr(parent, tail, InPlaceActivation(activation))
            done[activation] = done.get(activation, 0) + 1
    return [f"{activation} in place after {count} unfused linear layer(s): it overwrites their results "
            "(no new tensor)" for activation, count in done.items()]


def _fuse_chosen(model: nn.Module, sites: list[tuple], example_inputs: tuple, kernels: str) -> list[str]:
    """The fused kernels of fuse_epilogues, installed where chosen; one line per shape."""
    if kernels not in ("measure", "fused"):
        return [f"epilogues: none fused (asked for {kernels})"]
    if not conv_epilogue_kernels():
        return ["epilogues: none fused (this torch build has no oneDNN fused kernels)"]
    if kernels == "measure" and not example_inputs:
        return ["epilogues: none fused (no example inputs to measure them with)"]
    layouts = _input_layouts(model, sites, example_inputs) if example_inputs else {}
    sums = donated_sums(model)
    groups: dict = {}
    for site in sites:
        parent, producer = site[:2]
        layout = layouts.get(id(getattr(parent, producer)))
        if example_inputs and layout is None:
            continue  # not run by these inputs: this configuration does not use it
        donated = site[5] >= 0 and (id(parent), site[3]) in sums
        groups.setdefault((*_shape_key(site, layout), donated), []).append((site, layout))
    summary = []
    for (*_, donated), members in groups.items():
        (site, layout), count = members[0], len(members)
        chosen, why = _choose(site, layout, kernels, donated)
        if chosen == "fused":
            for member, member_layout in members:
                _install(member, member_layout)
        summary.append(f"{_describe(site, layout, donated)}, {count} layer(s): {chosen} ({why})")
    return summary


def _shape_key(site: tuple, layout) -> tuple:
    layer, activation, operand = site[2], site[4], site[5]
    if isinstance(layer, nn.Linear):
        return ("linear", layer.in_features, layer.out_features, layer.bias is not None, layout, activation)
    return ("conv", layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride, layer.padding,
            layer.dilation, layer.groups, layer.bias is not None, layout, activation, operand >= 0)


def _describe(site: tuple, layout, donated: bool = False) -> str:
    _, _, layer, _, activation, operand = site
    shape = f" on {list(layout[0])}{' channels-last' if layout[1] else ''}" if layout else ""
    if isinstance(layer, nn.Linear):
        return f"linear+{activation} {layer.in_features}->{layer.out_features}{shape}"
    k = "x".join(map(str, layer.kernel_size))
    post = ((" + residual" + (" (donated)" if donated else "") if operand >= 0 else "")
            + (f" + {activation}" if activation != "none" else ""))
    return (f"conv {layer.in_channels}->{layer.out_channels} {k} stride {layer.stride[0]}"
            f"{f' groups {layer.groups}' if layer.groups > 1 else ''}{post}{shape}")


def _fused_module(site: tuple, layout) -> nn.Module:
    parent, _, layer, tail, activation, operand = site
    if isinstance(layer, nn.Linear):
        rows = 1
        for size in (layout[0][:-1] if layout else ()):
            rows *= size
        return FusedLinearActivation(layer, activation, rows or 1024)
    end = getattr(parent, tail) if tail is not None else None
    return FusedConv(layer, activation, operand, layout[0] if layout else None, end)


def _install(site: tuple, layout) -> None:
    """Swap the chain's layers: the fused kernel where the chain ends, identities before it."""
    parent, producer, tail = site[0], site[1], site[3]
    fused = _fused_module(site, layout)
    if tail is None:
        setattr(parent, producer, fused)  # a whole block that is the chain
        return
    setattr(parent, tail, fused)
    setattr(parent, producer, nn.Identity())  # passes the convolution's input on, through the folded norm


def _choose(site: tuple, layout, kernels: str, donated: bool = False) -> tuple[str, str]:
    """("fused" or "plain", why) for one chain shape; see fuse_epilogues.  `donated`: the residual
    sum's other input dies there, so the fused kernel will add into it (plan_overwrites)."""
    if kernels != "measure":
        return "fused", f"asked for {kernels}"
    fused = _fused_module(site, layout)
    candidates, setup = _candidates(site, layout, fused, donated)
    try:
        with torch.inference_mode():
            first = {}
            for name, fn in candidates.items():
                if name in setup:
                    setup[name]()
                first[name] = fn()
    except RuntimeError as error:  # a post-op combination this oneDNN build refuses
        return "plain", f"the fused kernel failed: {str(error).splitlines()[0][:80]}"
    expected = first["plain"]
    if not torch.allclose(first["fused"], expected, rtol=1e-4, atol=1e-4 * float(expected.abs().max()) + 1e-6):
        return "plain", "the fused kernel's result differs from the plain layers'"
    if _channels_last(first["fused"]) and not _channels_last(expected):
        # torch's own convolution may pick a kernel that returns NCHW (at 1 thread, a 1x1 convolution of a
        # batch under 16 runs as a GEMM): every layer after it would then run on NCHW activations, a max
        # pool 13x slower (ResNet-50's, AVX2 Zen 3), which timing this layer alone does not see.
        return "fused", "the plain layers return NCHW activations here, which slow the layers after them"
    times = fastest_seconds(candidates, setup=setup)  # the minimum: see fastest_seconds
    best_plain = min(seconds for name, seconds in times.items() if name != "fused")
    chosen = "fused" if times["fused"] <= KEEP_MARGIN * best_plain else "plain"
    return chosen, f"fastest of interleaved calls: {ranked_times(times)}"


def _channels_last(x: torch.Tensor) -> bool:
    return x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


def _candidates(site: tuple, layout, fused: nn.Module, donated: bool = False) -> tuple[dict, dict]:
    """Callables on random inputs of the chain's shape, the fused kernel and the plain layers, and
    what runs untimed before a call of each (interleaved_samples' `setup`).  A donated residual sum's
    fused kernel is timed as it runs in the model, adding into its other input (whose values the
    setup puts back): on the Zen 5 (AVX-512, 2 threads) it takes 16-23% less time than the kernel
    writing a new tensor at ResNet-50's first two stages, where that one is slower than the plain
    layers."""
    parent, producer, layer, tail, activation, operand = site
    shape = layout[0] if layout else None
    if isinstance(layer, nn.Linear):
        x = torch.randn(*(shape or (1024, layer.in_features)))
        after = InPlaceActivation(activation)  # what follows an unfused layer (activations_in_place)
        found = {"plain": lambda: after(layer(x)), "fused": functools.partial(fused, x)}
        for kernel in packed_linear_kernels():  # the packed GEMMs choose_linear_kernels may pick instead
            packed = PackedLinear(layer, False, kernel, x.numel() // x.shape[-1])
            found[f"{kernel} + {activation}"] = lambda packed=packed: after(packed(x))
        return found, {}
    x = torch.randn(*shape)
    if layout[1]:
        x = x.contiguous(memory_format=torch.channels_last)
    inputs = [x]
    if operand >= 0:
        with torch.inference_mode():
            out = layer(x)
        inputs = [None, None]
        inputs[operand], inputs[1 - operand] = x, torch.randn_like(out)
        # Timed calls must not keep overwriting the residual input: only the convolution's output may be.
        fused.tail = ResidualActivation(activation, operand, inplace=operand == 0 and fused.tail.inplace)
    plain = getattr(parent, producer) if tail is None else fused.unfused
    found = {"plain": functools.partial(plain, *inputs), "fused": functools.partial(fused, *inputs)}
    if not donated:  # (only a residual sum is: _fuse_chosen)
        return found, {}
    other = inputs[1 - operand]
    fused.overwrite, pristine = True, other.clone()
    found["fused"] = functools.partial(_donating, fused, *inputs)
    return found, {"fused": functools.partial(other.copy_, pristine)}


def _donating(layer: nn.Module, *inputs: torch.Tensor) -> torch.Tensor:
    """layer(*inputs) as inside a forward of a model whose layers may overwrite donated inputs."""
    _DONATIONS.active.append(True)
    try:
        return layer(*inputs)
    finally:
        _DONATIONS.active.pop()
