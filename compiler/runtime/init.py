"""Runtime helpers for initialization, as real Python: generated modules carry the ones they
use (codegen/helpers.py reads this file with helpers.py).

A generated block lists the op of each layer that holds parameters (`LAYER_OPS`) and keeps
the spec's `init` statements as data (`self.init_rules`: (target, scheme, torch.nn.init
arguments)).  `init_parameters` walks the model once, in registration order, and gives each
parameter the rule that wins for it -- a rule naming the layer beats a rule naming its op,
and between two of a kind the outer block's wins -- or, with none, its layer's PyTorch
default.  A layer made by fusing several (-O2's query_key_value) is initialized part by
part, as the separate layers would be, so one seed gives the same weights at every -O level.
"""
import math

import torch
from torch import nn


class WeightInitMixin:
    """`init_weights()` (the spec's initialization, as construction does it), `tie_weights()`
    and loading that re-ties first: what a model built on the meta device needs."""

    def init_weights(self) -> None:
        """Initialize every parameter as the spec's `init` statements say (PyTorch's default for
        the others), after re-applying the ties and recomputing the non-persistent buffers:
        `with torch.device("meta"): m = Model()`, `m.to_empty(device="cpu")`, `m.init_weights()`
        gives the model construction gives.  Rules of blocks around this one do not apply: call
        it on the model."""
        with torch.no_grad():
            tie_all_weights(self)
            reset_buffers(self)
            init_parameters(self)

    def tie_weights(self) -> None:
        """Re-apply this block's `tie`s (it has none): moving a model with `to_empty()` unties."""

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """nn.Module.load_state_dict, with the ties re-applied and the non-persistent buffers
        recomputed first (and the ties again after `assign=True`), so a model built on the meta
        device and moved with `to_empty()` loads into a working model."""
        with torch.no_grad():
            tie_all_weights(self)
            reset_buffers(self)
        result = super().load_state_dict(state_dict, strict=strict, assign=assign)
        if assign:
            tie_all_weights(self)
        return result


def tie_all_weights(model: nn.Module) -> None:
    """Every generated block's `tie_weights()`, outermost first."""
    for module in model.modules():
        if isinstance(module, WeightInitMixin):
            module.tie_weights()


def reset_buffers(model: nn.Module) -> None:
    """Recompute what is not a weight: fixed tables (`reset_buffers()`) and batch-norm statistics."""
    for module in model.modules():
        if hasattr(module, "reset_buffers"):
            module.reset_buffers()
        if hasattr(module, "reset_running_stats"):
            module.reset_running_stats()


def init_parameters(model: nn.Module) -> None:
    """Initialize each parameter under `model` once, in registration order (see the module doc)."""
    scopes = [(f"{path}." if path else "", module.init_rules) for path, module in model.named_modules()
              if getattr(module, "init_rules", ())]
    _init_module(model, "", scopes, set())


def _init_module(module: nn.Module, prefix: str, scopes: list, done: set[int]) -> None:
    """A block's own tensors, then its submodules in order, as named_parameters() lists them: a
    tied tensor takes the rule of its first place."""
    ops = getattr(module, "LAYER_OPS", {})
    for name, op in ops.items():
        if isinstance(getattr(module, name, None), nn.Parameter):
            _init_layer(getattr(module, name), prefix + name, op, scopes, done)
    for name, child in module.named_children():
        if name not in ops:
            _init_module(child, f"{prefix}{name}.", scopes, done)
        elif isinstance(child, nn.ModuleList):
            for i, item in enumerate(child):
                _init_layer(item, f"{prefix}{name}.{i}", ops[name], scopes, done)
        else:
            _init_layer(child, prefix + name, ops[name], scopes, done)


def _init_layer(layer, path: str, op: str, scopes: list, done: set[int]) -> None:
    if isinstance(layer, nn.Parameter):
        rule = init_rule_for(scopes, path, op, "")
        if rule is not None and id(layer) not in done:
            _apply_init(layer, *rule)
        done.add(id(layer))
        return
    start = 0
    for part, rows in getattr(layer, "fused_from", None) or ((path.rsplit(".", 1)[-1], None),):
        logical = path if rows is None else f"{path.rsplit('.', 1)[0]}.{part}" if "." in path else part
        tensors = {n: p if rows is None else p[start:start + rows] for n, p in layer.named_parameters()
                   if id(p) not in done}
        rules = {n: init_rule_for(scopes, f"{logical}.{n}", op, n) for n in tensors}
        if any(rule is None for rule in rules.values()):
            _reset_to_default(layer, tensors, rows, done)
        for n, rule in rules.items():
            if rule is not None:
                _apply_init(tensors[n], *rule)
        start += rows or 0
    done.update(id(p) for p in layer.parameters())


def init_rule_for(scopes: list, path: str, op: str, parameter: str):
    """(scheme, arguments) for the tensor at `path`: the outermost rule naming it, else the
    outermost naming its op and parameter (`Linear.weight`), else None.  A repeat's name in a
    rule stands for each of its layers (`blocks.output.weight` names `blocks.3.output.weight`)."""
    by_path = by_op = None
    for prefix, rules in scopes:
        if not path.startswith(prefix):
            continue
        relative = path[len(prefix):]
        unindexed = ".".join(part for part in relative.split(".") if not part.isdigit())
        for target, scheme, arguments in rules:
            if by_path is None and target in (relative, unindexed):
                by_path = (scheme, arguments)
            elif by_op is None and parameter and target == f"{op}.{parameter}":
                by_op = (scheme, arguments)
    return by_path or by_op


def _apply_init(tensor: torch.Tensor, scheme: str, arguments: dict) -> None:
    getattr(nn.init, f"{scheme}_")(tensor, **arguments)


def _reset_to_default(layer: nn.Module, tensors: dict, rows, done: set[int]) -> None:
    """PyTorch's default initialization of a layer (of one part of a fused Linear), leaving the
    tensors other layers already initialized (tied ones) as they were."""
    if rows is not None:        # one part of a fused nn.Linear: its reset_parameters on the rows
        nn.init.kaiming_uniform_(tensors["weight"], a=math.sqrt(5))
        if "bias" in tensors:
            bound = 1 / math.sqrt(tensors["weight"].shape[1]) if tensors["weight"].shape[1] > 0 else 0
            nn.init.uniform_(tensors["bias"], -bound, bound)
        return
    kept = {n: p.detach().clone() for n, p in layer.named_parameters() if id(p) in done}
    for module in layer.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    for n, value in kept.items():
        layer.get_parameter(n).copy_(value)
