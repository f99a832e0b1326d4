"""The vocabulary head on response positions only (locus.training.head) computes the loss
transformers computes from the full logits: same value, same gradients, same training run."""

import csv
import json

import pytest
import torch
import transformers

from conftest import RECORDS, train_tiny_cell, write_params
from locus.params import load
from locus.training import head, loop
from locus.training.cell_data import load_split
from locus.training.loop import make_collator
from locus.training.modeling import adapter_config, load_base, load_tokenizer


def _peft_model_and_batch(tiny_model, arith_raw, tmp_path, padding_free=False):
    from peft import get_peft_model

    params = load(
        write_params(
            tmp_path / "p.yaml",
            arith_raw,
            tmp_path / "res",
            quantization={"method": "none"},
            training={"padding_free": padding_free},
        )
    )
    tok = load_tokenizer(tiny_model)
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in RECORDS[:6]))
    data, _ = load_split(tok, tmp_path / "t.jsonl", params)
    torch.manual_seed(0)
    model = get_peft_model(load_base(params, tiny_model, quantize=False), adapter_config(params))
    for name, p in model.named_parameters():  # a non-zero B, so the adapter shapes the loss
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.1)
    model.eval()  # no dropout: both paths must see the same activations
    model.config.use_cache = False  # as fit() sets it: an empty cache would skip the packed-sequence mask
    batch = make_collator(tok, params)([data[i] for i in range(len(data))])
    return model, {k: v.to(model.device) for k, v in batch.items()}  # the model's device (cuda:0 on a GPU host)


def _grads(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("padding_free", [False, True])
@pytest.mark.parametrize("num_items", [None, 57])
def test_response_loss_equals_the_full_logits_loss(tiny_model, arith_raw, tmp_path, padding_free, num_items):
    model, batch = _peft_model_and_batch(tiny_model, arith_raw, tmp_path, padding_free)
    assert (batch["labels"] == -100).any() and (batch["labels"] != -100).any()  # prompt masked
    kwargs = {} if num_items is None else {"num_items_in_batch": torch.tensor(num_items)}
    stock = model(**batch, **kwargs).loss
    stock.backward()
    want = _grads(model)
    model.zero_grad()
    mine = head.response_loss(model, batch, kwargs.get("num_items_in_batch"))
    mine.backward()
    got = _grads(model)
    assert float(mine.detach()) == pytest.approx(float(stock.detach()), rel=1e-6)
    assert set(got) == set(want) and any("lora_A" in n for n in got)
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=1e-5, atol=1e-7, msg=name)


def test_a_model_without_a_linear_head_keeps_its_own_logits(tiny_model, arith_raw, tmp_path, monkeypatch):
    model, batch = _peft_model_and_batch(tiny_model, arith_raw, tmp_path)
    hidden, _ = head.head_inputs(model, batch)
    assert hidden.shape[-1] == model.config.hidden_size
    monkeypatch.setattr(head, "LINEAR_HEAD", set())
    logits, identity = head.head_inputs(model, batch)
    assert logits.shape[-1] == model.config.vocab_size and identity(logits) is logits


@pytest.mark.parametrize("padding_free", [False, True])
def test_a_training_run_logs_the_stock_trainer_losses(tiny_model, arith_raw, tmp_path, monkeypatch, padding_free):
    """The train stage with the response-position head against the same stage on transformers'
    own Trainer (full logits): every step's loss, grad norm and both eval losses agree."""
    training = {"padding_free": padding_free}  # LoRA dropout on: both runs draw the same masks
    params = write_params(
        tmp_path / "p.yaml", arith_raw, tmp_path / "res", quantization={"method": "none"}, training=training
    )
    mine = train_tiny_cell(tmp_path, tiny_model, params, "mine")
    monkeypatch.setattr(loop, "ResponseHeadTrainer", transformers.Trainer)
    stock = train_tiny_cell(tmp_path, tiny_model, params, "stock")
    rows = [list(csv.DictReader((cell / "train_log.csv").open())) for cell in (mine, stock)]
    assert len(rows[0]) == len(rows[1]) >= 3
    for a, b in zip(*rows):
        for key in ("loss", "grad_norm"):
            assert float(a[key]) == pytest.approx(float(b[key]), rel=1e-4), (a["step"], key)
    m = [json.loads((cell / "metrics.json").read_text()) for cell in (mine, stock)]
    for key in ("eval_loss_before", "eval_loss_after"):
        assert m[0][key] == pytest.approx(m[1][key], rel=1e-5), key


@pytest.mark.parametrize("mixed_precision", ["bf16", "no"])
def test_a_training_step_runs_under_the_trainers_autocast(tiny_model, arith_raw, tmp_path, mixed_precision):
    """training.mixed_precision reaches the loss on response positions: accelerate autocasts the
    model's own forward, which this loss bypasses (it calls the decoder and the head itself), so
    the Trainer's autocast must wrap it. A LoRA matmul and the head compute in bf16 under bf16
    (on CPU too, when asked for), in float32 otherwise."""
    from peft import get_peft_model

    training = {"mixed_precision": mixed_precision, "max_steps": 1, "grad_accum_steps": 1}
    params = load(
        write_params(
            tmp_path / "p.yaml", arith_raw, tmp_path / "res", quantization={"method": "none"}, training=training
        )
    )
    tok = load_tokenizer(tiny_model)
    (tmp_path / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in RECORDS[:4]))
    data, _ = load_split(tok, tmp_path / "t.jsonl", params)
    model = get_peft_model(load_base(params, tiny_model, quantize=False), adapter_config(params))
    seen = {}

    def record(name):
        def hook(module, args, output):
            seen.setdefault(name, output.dtype)

        return hook

    lora_a = next(m for n, m in model.named_modules() if n.endswith("lora_A.default"))
    lora_a.register_forward_hook(record("lora"))
    model.get_base_model().get_output_embeddings().register_forward_hook(record("head"))
    args = loop.training_arguments(params, 1e-3, 0, str(tmp_path / "out"))
    trainer = head.ResponseHeadTrainer(
        model=model, args=args, train_dataset=data, data_collator=make_collator(tok, params)
    )
    trainer.train()
    want = torch.bfloat16 if mixed_precision == "bf16" else torch.float32
    assert seen == {"lora": want, "head": want}
