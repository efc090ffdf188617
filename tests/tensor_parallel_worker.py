"""What each process of tests/test_tensor_parallel.py runs (under torch.multiprocessing.spawn,
gloo on CPU): a generated model trained a few steps sharded and, in the same process, unsharded
from the same weights on the same batches; losses, gradients and the weights after the steps
must agree.  In float64, so the tolerance measures sharding, not float32 rounding."""
from __future__ import annotations

import copy
import datetime
import importlib.util
import os
import sys
import traceback
import types
from pathlib import Path

import torch

# Float64 on both sides: what is left is the order of the sums (all-reduce vs one GEMM).
ATOL, RTOL = 1e-10, 1e-8
STEPS = 2
WRAPPER = "_checkpoint_wrapped_module."


def load_module(path: str, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def batch(case: dict, step: int) -> tuple:
    """The same token batch on every rank (tensor parallelism: every rank reads the whole batch)."""
    generator = torch.Generator().manual_seed(100 + step)
    vocab, length = case["vocab"], case["length"]
    ids = [torch.randint(1, vocab, (2, length), generator=generator) for _ in range(case.get("sequences", 1))]
    mask = torch.ones(2, length, dtype=torch.bool)
    mask[1, length - 3:] = False               # padding in the second sequence
    return (*ids, *([mask] * case.get("masks", 0)))


def outputs_of(result) -> list[torch.Tensor]:
    if isinstance(result, torch.Tensor):
        return [result]
    if isinstance(result, dict):
        return [v for v in result.values() if isinstance(v, torch.Tensor)]
    return [t for t in result if isinstance(t, torch.Tensor)]


def loss_of(model: torch.nn.Module, inputs: tuple) -> torch.Tensor:
    """Mean squares of every output, with a fixed weighting so the gradients are not symmetric."""
    total = 0
    for out in outputs_of(model(*inputs)):
        weights = torch.linspace(-1.0, 2.0, out.shape[-1], dtype=out.dtype)
        total = total + (out * weights).square().mean()
    return total


def full(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor


def assert_close(what: str, sharded: torch.Tensor, reference: torch.Tensor) -> None:
    if not torch.allclose(sharded, reference, atol=ATOL, rtol=RTOL):
        worst = (sharded - reference).abs().max().item()
        raise AssertionError(f"{what} differs by {worst:.3g} (atol {ATOL}, rtol {RTOL})")


def shard(model: torch.nn.Module, module, case: dict, world: int):
    from torch.distributed.device_mesh import init_device_mesh

    # the sharding runtime: dlc_parallel.py, which `dlc compile` writes beside the generated modules
    module = sys.modules.get("dlc_parallel") or load_module(str(Path(case["file"]).parent / "dlc_parallel.py"),
                                                            "dlc_parallel")

    if case["mode"] == "tp":
        module.parallelize(model, init_device_mesh("cpu", (world,), mesh_dim_names=("tp",)))
    else:                                       # tensor parallel inside, FSDP across (a 1 x world mesh)
        mesh = init_device_mesh("cpu", (1, world), mesh_dim_names=("dp", "tp"))
        # "tp_fsdp_compiled": each stack element through torch.compile too (aot_eager: dynamo and
        # autograd tracing, without inductor's slow CPU code generation)
        compiled = {"backend": "aot_eager"} if case["mode"] == "tp_fsdp_compiled" else False
        module.apply_parallelism(model, tp_mesh=mesh["tp"], dp_mesh=mesh["dp"], checkpoint=True, compile=compiled)
    return model


def train_and_compare(module, case: dict, world: int) -> None:
    torch.manual_seed(0)
    reference = getattr(module, case["model"])(**case["config"]).double()
    sharded = shard(copy.deepcopy(reference), module, case, world)
    optimizers = [torch.optim.AdamW(m.parameters(), lr=1e-3) for m in (reference, sharded)]
    for step in range(STEPS):
        inputs = batch(case, step)
        losses = [loss_of(m, inputs) for m in (reference, sharded)]
        for loss in losses:
            loss.backward()
        assert_close(f"loss at step {step}", full(losses[1]), losses[0])
        grads = {n.replace(WRAPPER, ""): p.grad for n, p in sharded.named_parameters()}
        for name, param in reference.named_parameters():
            assert_close(f"gradient of {name} at step {step}", full(grads[name]), param.grad)
        for optimizer in optimizers:
            optimizer.step()
            optimizer.zero_grad()
    weights = {n.replace(WRAPPER, ""): p for n, p in sharded.named_parameters()}
    for name, param in reference.named_parameters():
        assert_close(f"{name} after {STEPS} steps", full(weights[name].detach()), param.detach())


def checkpoints_round_trip(module, case: dict, world: int) -> None:
    """Train the sharded model a step; then (1) a DCP checkpoint of it, saved sharded, loads on one
    process into an unsharded model, and (2) its full state_dict loads strictly into an unsharded
    model: both give the sharded model's outputs and weights."""
    import torch.distributed as dist
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    torch.manual_seed(0)
    build = lambda: getattr(module, case["model"])(**case["config"]).double()   # noqa: E731
    sharded = shard(build(), module, case, world)
    optimizer = torch.optim.AdamW(sharded.parameters(), lr=1e-2)
    loss_of(sharded, batch(case, 0)).backward()
    optimizer.step()
    inputs = batch(case, 1)
    with torch.no_grad():
        expected = [full(t) for t in outputs_of(sharded(*inputs))]
    dcp.save(get_model_state_dict(sharded), checkpoint_id=case["checkpoint"])
    whole = get_model_state_dict(sharded, options=StateDictOptions(full_state_dict=True))
    dist.barrier()
    unsharded = {}
    for how in ("dcp", "full"):
        model = build()
        if how == "dcp":
            state = model.state_dict()
            dcp.load(state, checkpoint_id=case["checkpoint"], no_dist=True)
        else:
            state = whole
        model.load_state_dict(state, strict=True)
        unsharded[how] = model
        with torch.no_grad():
            for got, want in zip(outputs_of(model(*inputs)), expected, strict=True):
                assert_close(f"output of the unsharded model loaded from the {how} state dict", got, want)
    weights = {n.replace(WRAPPER, ""): full(p.detach()) for n, p in sharded.named_parameters()}
    for name, param in unsharded["dcp"].named_parameters():
        assert_close(f"{name} through DCP", param.detach(), weights[name])


def reference_loads_then_shards(module, case: dict, world: int) -> None:
    """HuggingFace's model, loaded through load_reference_state_dict: sharded, and with the
    reference state dict loaded into the model after it is sharded, it gives HF's logits."""
    # The stub tests/conftest.py installs (spawned processes do not run conftest): torchvision's
    # compiled ops do not load against the CPU build of torch, and transformers imports it.
    sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations"))
    import transformers

    torch.manual_seed(0)
    reference = getattr(transformers, case["reference"])(getattr(transformers, case["reference_config"])(
        **case["hf"], attn_implementation="eager")).double().eval()
    inputs = batch(case, 0)
    with torch.no_grad():
        want = reference(input_ids=inputs[0], attention_mask=inputs[1]).logits
    for when in ("before", "after"):
        model = getattr(module, case["model"])(**case["config"]).double().eval()
        if when == "before":
            model.load_reference_state_dict(reference.state_dict(), strict=True)
        shard(model, module, {**case, "mode": "tp"}, world)
        if when == "after":
            model.load_reference_state_dict(reference.state_dict(), strict=True)
        with torch.no_grad():
            got = outputs_of(model(*inputs))[0]
        assert_close(f"logits with the reference loaded {when} sharding", got, want)


def refuses_unequal_parts(module, case: dict, world: int) -> None:
    """A fused projection of unequal parts (grouped-query q/k/v at -O2) is refused, not mis-sharded."""
    model = getattr(module, case["model"])(**case["config"])
    try:
        shard(model, module, case, world)
    except ValueError as error:
        assert "packs parts of unequal widths" in str(error), error
    else:
        raise AssertionError("parallelize sharded a projection of unequal parts")


def run(rank: int, world: int, port: int, cases: list[dict], failures: str) -> None:
    """One process: every case in turn; a failure is written to `failures` (one file per rank)."""
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    # A rank that fails inside a collective must not leave the other waiting forever.
    dist.init_process_group("gloo", rank=rank, world_size=world, timeout=datetime.timedelta(seconds=60))
    try:
        for i, case in enumerate(cases):
            module = load_module(case["file"], f"tp_case_{i}")
            try:
                CHECKS[case.get("check", "train")](module, case, world)
            except Exception:
                Path(failures, f"rank{rank}_{i}.txt").write_text(f"{case['label']}\n{traceback.format_exc()}")
            dist.barrier()
    finally:
        dist.destroy_process_group()


CHECKS = {"train": train_and_compare, "checkpoint": checkpoints_round_trip,
          "reference": reference_loads_then_shards, "refuses": refuses_unequal_parts}
