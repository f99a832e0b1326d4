"""Representation change (1 − linear CKA of hidden states, base vs tuned) on a tiny random Llama."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import RECORDS, write_params
from locus.core.representation import cka_distance
from locus.params import load
from locus.training.modeling import adapter_config, load_base, load_tokenizer, seed_everything
from locus.training.sft_data import encode


def textbook_cka(x: torch.Tensor, y: torch.Tensor, dtype=torch.float64) -> float:
    """Kornblith et al.'s eq. 5 as written; in float64, the reference cka_distance must agree with."""
    x, y = x.to(dtype), y.to(dtype)
    x, y = x - x.mean(0), y - y.mean(0)
    return float(
        torch.linalg.matrix_norm(y.T @ x) ** 2 / (torch.linalg.matrix_norm(x.T @ x) * torch.linalg.matrix_norm(y.T @ y))
    )


def test_cka_distance_invariances_and_limits():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 16, generator=g, dtype=torch.float64)
    rotation, _ = torch.linalg.qr(torch.randn(16, 16, generator=g, dtype=torch.float64))
    assert cka_distance(x, x) == 0.0
    # invariant to an orthogonal transform, isotropic scaling and a shift (columns are centred)
    assert cka_distance(x, 3.0 * x @ rotation + 5.0) == pytest.approx(0.0, abs=1e-12)
    # not invariant to an anisotropic scaling of the features; the difference form is exact for any Y
    stretched = x * torch.linspace(0.1, 3.0, 16, dtype=torch.float64)
    assert cka_distance(x, stretched) > 0.05
    assert cka_distance(x, stretched) == pytest.approx(1 - textbook_cka(x, stretched), rel=1e-12)
    # independent activations: near 1 (CKA ≈ d/n for n ≫ d)
    assert cka_distance(x, torch.randn(400, 16, generator=g, dtype=torch.float64)) > 0.9
    assert math.isnan(cka_distance(x, torch.ones(400, 16)))
    with pytest.raises(ValueError, match="same n × d"):
        cka_distance(x, x[:10])


@pytest.mark.parametrize("size", [1e-2, 1e-3, 3e-4])
def test_cka_distance_keeps_small_changes_in_float32(size):
    """Hidden states that barely change (1 − CKA ≈ 5e-5, 5e-7, 5e-8): from float32 inputs,
    cka_distance matches the textbook formula in float64 to 1e-4 of the value (measured ≤ 1e-6),
    where the same formula in float32 is 9% and 100% off at the two smaller ones."""
    g = torch.Generator().manual_seed(1)
    # correlated features with unequal scales, like hidden states
    x = torch.randn(3000, 64, generator=g) @ torch.randn(64, 64, generator=g) + 3.0
    y = x + size * x.std() * (torch.randn(3000, 64, generator=g) + 0.5 * torch.tanh(x))
    reference = 1 - textbook_cka(x, y)
    assert reference > 0
    assert cka_distance(x, y) == pytest.approx(reference, rel=1e-4)
    float32_textbook = 1 - textbook_cka(x, y, dtype=torch.float32)
    if size <= 1e-3:
        assert float32_textbook != pytest.approx(reference, rel=1e-2)


def test_a_change_in_one_layer_shows_locally_there_and_cumulatively_after(tiny_model, tmp_path):
    """With lora_B = 0 (untrained) the tuned model is the base: 0 everywhere. Perturb only layer 1's
    adapter: the layer-alone change is 0 at layers 0 and 2 (fed the base's input, their weights are
    the base's) and > 0 at 1; the end-to-end change is 0 before layer 1 and > 0 from layer 1 on."""
    from peft import get_peft_model

    from locus.analysis.representation import representation_change

    params = load(write_params(tmp_path / "p.yaml", tmp_path, tmp_path / "res", quantization={"method": "none"}))
    tok = load_tokenizer(tiny_model)
    seed_everything(0)
    model = get_peft_model(load_base(params, tiny_model), adapter_config(params))
    dataset = [encode(tok, r["instruction"], r["response"] * (1 + i % 3)) for i, r in enumerate(RECORDS[:6])]
    untrained = representation_change(model, tok, dataset, batch_size=4)
    assert list(untrained.layer) == [0, 1, 2] and (untrained.tokens > 0).all()
    assert untrained[["rep_change", "rep_change_local"]].abs().max().max() < 1e-6

    with torch.no_grad():
        for name, p in model.named_parameters():
            if "layers.1." in name and "lora_B" in name:
                p.normal_(0, 0.5)
    model.train()
    changed = representation_change(model, tok, dataset, batch_size=4).set_index("layer")
    assert model.training  # the caller's mode is restored
    assert changed.rep_change_local[0] < 1e-6 and changed.rep_change_local[2] < 1e-6
    assert changed.rep_change_local[1] > 1e-4
    assert changed.rep_change[0] < 1e-6 and (changed.rep_change[[1, 2]] > 1e-4).all()
    # padding is excluded: batching the same examples differently gives the same numbers
    rebatched = representation_change(model, tok, dataset, batch_size=5).set_index("layer")
    torch.testing.assert_close(
        torch.tensor(rebatched.rep_change.values), torch.tensor(changed.rep_change.values), atol=1e-5, rtol=1e-4
    )


def test_report_section_states_the_agreement_with_the_weight_maps():
    """Synthetic layers table: in cpp the computation changes where the weights moved (ρ = 1), in
    physics in the opposite order (ρ = −1), in python unrelated (ρ = 0.26, within chance over 6
    layers: unmarked); both seeds agree, so every ± is 0."""
    import pandas as pd

    from locus.report.representation import agreement, figures

    rows = []
    shuffled = [2, 5, 1, 6, 3, 4]  # ρ = 0.26 with the layer order: within chance over 6 layers
    for domain in ("cpp", "physics", "python"):
        for seed in (0, 1):
            for layer in range(6):
                weight = 1.0 + layer + 0.01 * seed
                local = {"cpp": 1 + layer, "physics": 6 - layer, "python": shuffled[layer]}[domain]
                rows.append(
                    {
                        "domain": domain,
                        "lr": 0.001,
                        "seed": seed,
                        "layer": layer,
                        "mean_abs_per_lr": weight,
                        "rel_fro": weight,
                        "rep_change": 0.01 * (layer + 1),
                        "rep_change_local": 0.001 * local,
                    }
                )
    layers = pd.DataFrame(rows)
    rho = agreement(layers).groupby("domain").mean(numeric_only=True)
    assert rho.loc["cpp", "rel_fro"] == pytest.approx(1.0) and rho.loc["physics", "rel_fro"] == pytest.approx(-1.0)
    charts, notes = figures(layers)
    assert list(charts) == ["representation_lr=0.001"] and list(notes) == list(charts)
    note = notes["representation_lr=0.001"]
    assert "cpp +1.00 ± 0.00*" in note and "physics -1.00 ± 0.00*" in note and "over 2 seeds" in note
    assert "python +0.26 ± 0.00;" in note and "python +0.26 ± 0.00 (" in note  # no star: within chance
    assert "(* beyond chance: |ρ| > 0.88 over 6 layers, p ≈ 0.05" in note
    assert figures(layers.drop(columns=["rep_change", "rep_change_local"])) == ({}, {})


def test_the_first_token_of_each_sequence_is_not_compared():
    """The attention sink's position is left out, with right or left padding."""
    from locus.analysis.representation import compared_tokens

    right = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])
    left = torch.tensor([[0, 1, 1, 1], [1, 1, 1, 1]])
    assert compared_tokens(right).tolist() == [[False, True, True, False], [False, True, True, True]]
    assert compared_tokens(left).tolist() == [[False, False, True, True], [False, True, True, True]]
