"""Runtime helpers for initialization, as real Python: generated modules carry the ones they
use (codegen/helpers.py reads this file with helpers.py).

A generated block lists the op of each layer that holds parameters (`LAYER_OPS`; a torch.nn
layer built for the op it is named after, as nn.Linear for Linear, is left out: its class
names its op) and keeps the spec's `init` statements as data (`self.init_rules`: (target,
scheme, torch.nn.init arguments)).  `init_parameters` walks the model once, in registration
order, and gives each parameter the rule that wins for it -- a rule naming the layer beats a
rule naming its op, and between two of a kind the outer block's wins -- or, with none, its
layer's PyTorch default.  A layer made by fusing several (-O2's query_key_value) is
initialized part by part, as the separate layers would be, so one seed gives the same
weights at every -O level.
"""
import traceback

import torch
from torch import nn


class WeightInitMixin:
    """init_weights(), tie_weights() and loading that re-ties: what meta-device construction needs."""

    def init_weights(self) -> None:
        """Re-tie, recompute buffers, initialize as the spec's `init`s say (else PyTorch's default)."""
        if any(f.f_code.co_name == "__init__" and f.f_locals.get("self") is not self
               and isinstance(f.f_locals.get("self"), WeightInitMixin) for f, _ in traceback.walk_stack(None)):
            return      # inside the constructor of a block around this one, which initializes the whole, once
        restore_ties_and_buffers(self)
        scopes = [(f"{path}." if path else "", m.init_rules) for path, m in self.named_modules()
                  if getattr(m, "init_rules", ())]
        with torch.no_grad():
            init_module(self, "", scopes, set())

    def tie_weights(self) -> None:
        """Tie the parameters the block lists in TIED_WEIGHTS ((target, source) paths, HF's
        `_tied_weights_keys`); a block whose ties depend on its parameters has its own."""
        for target, source in getattr(self, "TIED_WEIGHTS", ()):
            owner, _, name = target.rpartition(".")
            setattr(self.get_submodule(owner), name, self.get_parameter(source))

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """nn.Module's, re-tied and with the buffers recomputed: a model moved off the meta device loads."""
        restore_ties_and_buffers(self)
        result = super().load_state_dict(state_dict, strict=strict, assign=assign)
        restore_ties_and_buffers(self, buffers=False)      # assign=True put the checkpoint's tensors in
        return result


def restore_ties_and_buffers(model: nn.Module, buffers: bool = True) -> None:
    """Every block's tie_weights(); fixed tables (`reset_buffers()`) and batch-norm statistics anew."""
    with torch.no_grad():
        for module in model.modules():
            for method in ("tie_weights", "reset_buffers", "reset_running_stats")[:3 if buffers else 1]:
                if hasattr(module, method) and (method != "tie_weights" or isinstance(module, WeightInitMixin)):
                    getattr(module, method)()


def init_module(module: nn.Module, prefix: str, scopes: list, done: set[int]) -> None:
    """Each tensor once, in named_parameters() order: a tied one takes the rule of its first place."""
    ops = dict(getattr(module, "LAYER_OPS", ()))
    if isinstance(module, WeightInitMixin):     # a generated block's torch.nn layers: the op is the class
        ops.update({name: type(child).__name__ for name, child in module.named_children()
                    if name not in ops and _is_torch_layer(child)})
    children = [(n, p) for n, p in vars(module)["_parameters"].items() if n in ops] + list(module.named_children())
    for name, child in children:
        layers = list(child) if isinstance(child, nn.ModuleList) and name in ops else [child]
        for i, layer in enumerate(layers):
            path = prefix + name + ("" if layer is child else f".{i}")
            (init_layer(layer, path, ops[name], scopes, done) if name in ops else init_module(layer, path + ".", scopes, done))


def _is_torch_layer(module: nn.Module) -> bool:
    return type(module).__module__.startswith("torch.nn.modules.") and \
        not isinstance(module, (nn.ModuleList, nn.ModuleDict, nn.Sequential))


def init_layer(layer: nn.Module | nn.Parameter, path: str, op: str, scopes: list, done: set[int]) -> None:
    """One layer (a Parameter, or each part of a fused layer: `fused_from` holds the parts' rows)."""
    named = [("", layer)] if isinstance(layer, nn.Parameter) else list(layer.named_parameters())
    start, base = 0, path.rsplit(".", 1)[0] + "." if "." in path else ""
    for part, rows in getattr(layer, "fused_from", None) or ((None, None),):
        tensors = {n: p if rows is None else p[start:start + rows] for n, p in named if id(p) not in done}
        where = path if part is None else base + part
        rules = {n: init_rule_for(scopes, f"{where}.{n}" if n else where, op, n) for n in tensors}
        if None in rules.values() and rows is not None:    # nn.Linear's own default, on one part's rows
            nn.Linear.reset_parameters(type("Part", (), {"weight": tensors["weight"], "bias": tensors.get("bias")})())
        elif None in rules.values() and isinstance(layer, nn.Module):    # PyTorch's default; tied tensors kept
            kept = {n: p.detach().clone() for n, p in layer.named_parameters() if id(p) in done}
            [m.reset_parameters() for m in layer.modules() if hasattr(m, "reset_parameters")]
            [layer.get_parameter(n).copy_(value) for n, value in kept.items()]
        for n, rule in rules.items():
            if rule is not None:
                getattr(nn.init, f"{rule[0]}_")(tensors[n], **rule[1])
        start += rows or 0
    if isinstance(layer, nn.Embedding) and layer.padding_idx is not None and id(layer.weight) not in done:
        layer.weight[layer.padding_idx].zero_()      # as nn.Embedding and HF keep the padding row
    done.update(id(p) for _, p in named)


def init_rule_for(scopes: list, path: str, op: str, parameter: str):
    """The outermost rule naming the tensor (a repeat's name: each layer), else naming its op, else None."""
    by_path = by_op = None
    for prefix, rules in scopes:
        relative = path[len(prefix):] if path.startswith(prefix) else ""
        unindexed = ".".join(part for part in relative.split(".") if not part.isdigit())
        for target, scheme, arguments in rules if relative else ():
            if by_path is None and target in (relative, unindexed):
                by_path = (scheme, arguments)
            elif by_op is None and parameter and target == f"{op}.{parameter}":
                by_op = (scheme, arguments)
    return by_path or by_op
