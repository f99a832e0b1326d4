"""params.yaml's `cluster:` section (no SLURM needed)."""

from __future__ import annotations

import pytest
import yaml

from locus.params import ParamsError, load


def test_defaults_train_on_cpu_in_the_default_partition():
    c = load("params.yaml").cluster
    assert c.gpus_per_train_job == 0 and c.partition == "" and c.account == ""
    assert c.train_mem_mb >= c.mem_mb and c.train_runtime_min >= c.runtime_min


@pytest.mark.parametrize(
    "cluster, key",
    [
        ({"gpus": 1}, "cluster.gpus"),  # a typo is an error, not ignored
        ({"gpus_per_train_job": -1}, "cluster.gpus_per_train_job"),
        ({"gpu_type": "a100:2"}, "cluster.gpu_type"),  # the count belongs in gpus_per_train_job
        ({"full_ft_gpu_type": "h100 --x"}, "cluster.full_ft_gpu_type"),
        ({"partition": "gpu; rm -rf /"}, "cluster.partition"),
        ({"train_mem_mb": 0}, "cluster.train_mem_mb"),
    ],
)
def test_bad_cluster_values_name_the_key(tmp_path, cluster, key):
    p = tmp_path / "params.yaml"
    p.write_text(yaml.safe_dump({**yaml.safe_load(open("params.yaml")), "cluster": cluster}))
    with pytest.raises(ParamsError) as e:
        load(p)
    assert key in str(e.value)


def test_a_gpu_cluster_in_one_place(tmp_path):
    p = tmp_path / "params.yaml"
    over = {"partition": "gpu", "account": "proj-123", "gpus_per_train_job": 1, "gpu_type": "a100"}
    p.write_text(yaml.safe_dump({**yaml.safe_load(open("params.yaml")), "cluster": over}))
    c = load(p).cluster
    assert (c.partition, c.account, c.gpus_per_train_job, c.gpu_type) == ("gpu", "proj-123", 1, "a100")


def test_model_jobs_ask_for_the_memory_the_model_needs(tmp_path):
    """A job that loads the base gets ≥ 2.5 × its bytes in model.dtype (+ runtime), whatever
    cluster.mem_mb says; the size comes from the safetensors headers alone."""
    import torch
    from safetensors.torch import save_file

    from locus.resources import FULL_FT_BYTES, LOAD_FACTOR, RUNTIME_MB, model_memory_mb, parameter_count

    model = tmp_path / "base"
    model.mkdir()
    save_file({"a": torch.zeros(1000, 300), "b": torch.zeros(7)}, str(model / "model-1.safetensors"))
    save_file({"c": torch.zeros(2, 3, dtype=torch.bfloat16)}, str(model / "model-2.safetensors"), metadata={"x": "y"})
    assert parameter_count(model) == 300_013 and parameter_count(tmp_path / "absent") is None
    params = load("params.yaml")
    assert params.model.dtype == "float32"
    assert model_memory_mb(4000, params, model) == 4000  # a small model: the configured floor
    assert model_memory_mb(1, params, model) == int(-(-LOAD_FACTOR * 300_013 * 4 // 2**20)) + RUNTIME_MB
    assert model_memory_mb(4000, params, tmp_path / "not prepared yet") == 4000
    # full fine-tuning: fp32 weights, gradients and AdamW state, whatever model.dtype says
    bf16 = params.model_copy(update={"model": params.model.model_copy(update={"dtype": "bfloat16"})})
    want = int(-(-FULL_FT_BYTES * 300_013 // 2**20)) + RUNTIME_MB
    assert model_memory_mb(1, params, model, full_ft=True) == model_memory_mb(1, bf16, model, full_ft=True) == want
    assert model_memory_mb(1, bf16, model) < model_memory_mb(1, params, model)


def test_full_fine_tuning_is_refused_on_a_gpu_it_cannot_fit(tmp_path):
    """Before loading the model: 18 bytes per parameter must be free on the GPU, else one line that
    names the model, both sizes and the key to change (locus.resources.full_ft_gpu_shortfall)."""
    import torch
    from safetensors.torch import save_file

    from locus.resources import FULL_FT_BYTES, full_ft_gpu_shortfall

    model = tmp_path / "base"
    model.mkdir()
    save_file({"w": torch.zeros(1000, 1000)}, str(model / "model.safetensors"))
    need = FULL_FT_BYTES * 1_000_000
    assert full_ft_gpu_shortfall(model, need, 2 * need) is None
    why = full_ft_gpu_shortfall(model, need - 1, 2 * need)
    assert why.startswith(f"{model}: full fine-tuning of 0.00B parameters") and "\n" not in why
    assert "cluster.full_ft_gpu_type" in why
    assert full_ft_gpu_shortfall(tmp_path / "absent", 0, 0) is None  # nothing to count: no refusal
