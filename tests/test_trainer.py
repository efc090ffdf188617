"""transformers.Trainer trains generated models as they are (no wrapper): a tiny GPT-2 language
model and a tiny BERT sequence classifier, on a synthetic dataset of int64 ids, int64 masks and
labels, which is what a tokenizer and HF's default collator hand a model.  Before training,
the loss our model returns equals HF's model's loss on the same weights; the losses Trainer
logs are finite and fall.  Built from configs, no downloads.
"""
from __future__ import annotations

import importlib.util
import math

import pytest
import torch
from tests.lazy_import import lazy_import

transformers = lazy_import("transformers")
if importlib.util.find_spec("accelerate") is None:   # Trainer needs it; found, not imported (0.18 s at collection)
    pytest.skip("accelerate is not installed", allow_module_level=True)

from generated import bert, gpt2

STEPS = 12


class Synthetic(torch.utils.data.Dataset):
    """`size` examples of right-padded ids with their mask and labels, the same on every epoch."""

    def __init__(self, size: int, length: int, vocab: int, classes: int | None = None, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(1, vocab, (size, length), generator=g)
        lengths = torch.randint(length // 2, length + 1, (size,), generator=g)
        self.mask = (torch.arange(length)[None] < lengths[:, None]).long()
        self.ids = self.ids.masked_fill(self.mask == 0, 0)
        if classes is None:     # language modelling: the ids themselves, no loss at padding
            self.labels = self.ids.masked_fill(self.mask == 0, -100)
        else:                   # a class each, which the first token decides, so there is something to learn
            self.labels = self.ids[:, 0] % classes

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict:
        return {"input_ids": self.ids[i], "attention_mask": self.mask[i], "labels": self.labels[i]}


def _train(model: torch.nn.Module, data: Synthetic, tmp_path) -> list[float]:
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path), per_device_train_batch_size=8, max_steps=STEPS, learning_rate=1e-2,
        lr_scheduler_type="constant", logging_steps=1, save_strategy="no", report_to=[], use_cpu=True, disable_tqdm=True, seed=0,
        dataloader_num_workers=0)
    trainer = transformers.Trainer(model=model, args=args, train_dataset=data)
    trainer.train()
    return [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]


def _first_batch(data: Synthetic) -> dict:
    return transformers.default_data_collator([data[i] for i in range(8)])


def _assert_trained(losses: list[float]) -> None:
    assert len(losses) == STEPS and all(math.isfinite(x) for x in losses), losses
    assert sum(losses[-3:]) < 0.95 * sum(losses[:3]), losses      # falling: the same 16 examples again and again


def test_a_collated_batch_gives_the_reference_loss():
    """The fast lane's share of this file (training with Trainer is slow): what HF's collator hands
    a model (int64 ids and masks, a class label each) gives our BERT classifier HF's loss on the
    same weights, the check each training test below starts from."""
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=61, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=64, max_position_embeddings=16, num_labels=3,
                                     attn_implementation="eager")
    reference = transformers.BertForSequenceClassification(config).eval()
    model = bert.BertForSequenceClassification(vocab=61, hidden=32, layers=2, heads=4, intermediate=64,
                                               max_positions=16, num_labels=3).eval()
    model.load_reference_state_dict(reference.state_dict())
    batch = _first_batch(Synthetic(8, 12, 61, classes=3))
    assert batch["attention_mask"].dtype == batch["labels"].dtype == torch.int64
    with torch.no_grad():
        torch.testing.assert_close(model(**batch).loss, reference(**batch).loss, atol=1e-5, rtol=1e-4)


@pytest.mark.slow
def test_trainer_trains_a_generated_gpt2(tmp_path):
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=61, n_positions=16, n_embd=32, n_layer=2, n_head=4,
                                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, attn_implementation="eager")
    reference = transformers.GPT2LMHeadModel(config).eval()
    model = gpt2.GPT2LMHeadModel(vocab=61, positions=16, d_model=32, layers=2, heads=4, dropout=0.0)
    model.load_reference_state_dict(reference.state_dict())
    data = Synthetic(16, 12, 61)
    with torch.no_grad():
        batch = _first_batch(data)
        torch.testing.assert_close(model.eval()(**batch).loss, reference(**batch).loss, atol=1e-5, rtol=1e-4)
    _assert_trained(_train(model.train(), data, tmp_path))
    assert model.lm_head.weight is model.transformer.token_embeddings.weight     # still tied


@pytest.mark.slow
def test_trainer_trains_a_generated_bert_classifier(tmp_path):
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=61, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=64, max_position_embeddings=16, num_labels=3,
                                     hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                                     attn_implementation="eager")
    reference = transformers.BertForSequenceClassification(config).eval()
    model = bert.BertForSequenceClassification(vocab=61, hidden=32, layers=2, heads=4, intermediate=64,
                                               max_positions=16, dropout=0.0, attention_dropout=0.0, num_labels=3)
    model.load_reference_state_dict(reference.state_dict())
    data = Synthetic(16, 12, 61, classes=3)
    with torch.no_grad():
        batch = _first_batch(data)
        torch.testing.assert_close(model.eval()(**batch).loss, reference(**batch).loss, atol=1e-5, rtol=1e-4)
    _assert_trained(_train(model.train(), data, tmp_path))
