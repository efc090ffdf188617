"""The benchmarked models: each stdlib spec beside its reference implementation.

An entry builds the reference (random init, no download), names the dlc class,
says how the reference checkpoint loads, and makes a batch of inputs for both.
"""
from __future__ import annotations

import sys
import types
from collections.abc import Callable
from dataclasses import dataclass

import torch

sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations"))


@dataclass(frozen=True)
class Entry:
    spec: str
    cls: str
    reference: Callable[[], torch.nn.Module]
    inputs: Callable[[int, int, torch.device], dict]          # (batch, seq) -> named inputs
    run_reference: Callable[[torch.nn.Module, dict], torch.Tensor]
    run_dlc: Callable[[torch.nn.Module, dict], torch.Tensor]


def _token_batch(vocab: int):
    def make(batch: int, seq: int, device: torch.device) -> dict:
        g = torch.Generator().manual_seed(0)
        ids = torch.randint(0, vocab, (batch, seq), generator=g)
        mask = torch.ones(batch, seq, dtype=torch.bool)
        mask[batch // 2:, seq * 3 // 4:] = False              # half the batch is padded
        return {"ids": ids.to(device), "mask": mask.to(device),
                "decoder_ids": torch.randint(0, vocab, (batch, seq), generator=g).to(device)}
    return make


def _images(batch: int, seq: int, device: torch.device) -> dict:
    g = torch.Generator().manual_seed(0)
    return {"images": torch.randn(batch, 3, 224, 224, generator=g).to(device)}


def _bert():
    from transformers import BertConfig, BertModel
    return BertModel(BertConfig(attn_implementation="sdpa"), add_pooling_layer=True)


def _gpt2():
    from transformers import GPT2Config, GPT2Model
    return GPT2Model(GPT2Config(attn_implementation="sdpa"))


def _t5():
    from transformers import T5Config, T5Model
    return T5Model(T5Config(attn_implementation="sdpa"))


def _vision(name: str):
    def build():
        import torchvision.models as tvm
        return getattr(tvm, name)()
    return build


def _first(out) -> torch.Tensor:
    return out[0] if isinstance(out, tuple) else out


ENTRIES: dict[str, Entry] = {
    "bert-base": Entry("bert", "BertModel", _bert, _token_batch(30522),
                       lambda m, x: m(input_ids=x["ids"], attention_mask=x["mask"].long()).last_hidden_state,
                       lambda m, x: _first(m(x["ids"], x["mask"]))),
    "gpt2": Entry("gpt2", "GPT2Model", _gpt2, _token_batch(50257),
                  lambda m, x: m(input_ids=x["ids"], attention_mask=x["mask"].long()).last_hidden_state,
                  lambda m, x: m(x["ids"], x["mask"])),
    "t5-small": Entry("t5", "T5Model", _t5, _token_batch(32128),
                      lambda m, x: m(input_ids=x["ids"], attention_mask=x["mask"].long(),
                                     decoder_input_ids=x["decoder_ids"]).last_hidden_state,
                      lambda m, x: m(x["ids"], x["decoder_ids"], x["mask"]).last_hidden_state),
    "resnet50": Entry("resnet", "ResNet50", _vision("resnet50"), _images,
                      lambda m, x: m(x["images"]), lambda m, x: m(x["images"])),
    "mobilenet_v2": Entry("mobilenet", "MobileNetV2", _vision("mobilenet_v2"), _images,
                          lambda m, x: m(x["images"]), lambda m, x: m(x["images"])),
    "vgg16": Entry("vgg", "VGG16", _vision("vgg16"), _images,
                   lambda m, x: m(x["images"]), lambda m, x: m(x["images"])),
}


def load_reference_weights(model: torch.nn.Module, reference: torch.nn.Module) -> None:
    state = reference.state_dict()
    if hasattr(model, "load_reference_state_dict"):
        model.load_reference_state_dict(state)
    else:
        model.load_state_dict(state, strict=True)
