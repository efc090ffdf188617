"""The whole-model check of optimize_for_inference()'s kernel choices.

Each layer shape's kernel is chosen by timing that layer alone (fusion.py, helpers.py), where its
weights and inputs stay in cache from one call to the next; inside the model they do not, and a
kernel that wins alone may lose there (oneDNN's packed GEMM against MKL's sgemm on AVX2 Zen 3, at
BERT-base's shapes).  So the chosen layers are kept only when one forward of the example inputs
is at least as fast with them as with the layers as compiled.  Like helpers.py, this file is
copied into generated modules by name (codegen/helpers.py).
"""
import time

import torch
from torch import nn


def module_slots(model: nn.Module) -> dict:
    """(id(parent), child name) -> (parent, child name, child) for every submodule of `model`: what
    keep_if_faster compares, to find the layers a step swapped."""
    return {(id(parent), name): (parent, name, child)
            for parent in model.modules() for name, child in parent.named_children()}


def _swapped(before: dict, model: nn.Module) -> list[tuple]:
    """(parent, name, compiled layer, chosen layer) for each slot whose layer was replaced since `before`."""
    return [(parent, name, before[key][2], child) for key, (parent, name, child) in module_slots(model).items()
            if key in before and before[key][2] is not child]


def _use(swaps: list[tuple], chosen: bool) -> None:
    for parent, name, compiled, new in swaps:
        setattr(parent, name, new if chosen else compiled)


def fastest_forward_seconds(model: nn.Module, example_inputs: tuple, swaps: list[tuple],
                            budget_s: float = 4.0, rounds: tuple[int, int] = (2, 6)) -> dict:
    """The fastest of a few forwards of `example_inputs` with the chosen layers and with the compiled
    ones, alternating (one warm-up each); the minimum, as a machine others share slows calls, not
    speeds them up.  Leaves the chosen layers in place."""
    sync = torch.cuda.synchronize if torch.cuda.is_initialized() else (lambda: None)
    best = {True: float("inf"), False: float("inf")}
    with torch.inference_mode():
        for chosen in (True, False):
            _use(swaps, chosen)
            model(*example_inputs)
        start = time.perf_counter()
        for r in range(rounds[1]):
            for chosen in ((True, False) if r % 2 == 0 else (False, True)):
                _use(swaps, chosen)
                sync()
                begin = time.perf_counter()
                model(*example_inputs)
                sync()
                best[chosen] = min(best[chosen], time.perf_counter() - begin)
            if r + 1 >= rounds[0] and time.perf_counter() - start > budget_s:
                break
    _use(swaps, True)
    return {"chosen": best[True], "compiled": best[False]}


def keep_if_faster(model: nn.Module, before: dict, example_inputs: tuple = (), kernels: str = "measure") -> list[str]:
    """Undo the layers swapped since `before` (module_slots) unless the whole forward of
    `example_inputs` is at least as fast with them: one line saying what was measured and kept.
    Only when the kernels were measured ("measure") on example inputs; asked-for kernels stay."""
    swaps = _swapped(before, model)
    if kernels != "measure" or not example_inputs or not swaps:
        return []
    times = fastest_forward_seconds(model, example_inputs, swaps)
    measured = f"measured {times['chosen'] * 1e3:.1f} ms with them, {times['compiled'] * 1e3:.1f} ms as compiled"
    if times["chosen"] <= times["compiled"]:
        return [f"whole model: the {len(swaps)} chosen layer(s) kept ({measured})"]
    _use(swaps, False)
    return [f"whole model: the {len(swaps)} chosen layer(s) undone, the layers as compiled are faster ({measured})"]
