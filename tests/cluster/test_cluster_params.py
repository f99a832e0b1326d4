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
