"""Where and how the model runs: device placement, precision, determinism and one GPU per job.

A CUDA device cannot be had in CI, so placement is checked through the arguments the loaders pass
(a fake `from_pretrained` that records them and loads the real tiny model on CPU), and precision
from the built TrainingArguments; benchmarks/gpu_suite.sh checks the same on a real GPU.
"""

import os

import numpy as np
import pytest
import torch

from conftest import write_params
from locus.params import load
from locus.training import modeling


def cuda_present(monkeypatch, bf16: bool = True) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)


@pytest.mark.parametrize("local_rank, expected", [(None, "cuda:0"), ("3", "cuda:3")])
def test_model_device_is_the_jobs_one_gpu(monkeypatch, local_rank, expected):
    cuda_present(monkeypatch)
    if local_rank is None:
        monkeypatch.delenv("LOCAL_RANK", raising=False)
    else:
        monkeypatch.setenv("LOCAL_RANK", local_rank)
    assert modeling.model_device() == expected


@pytest.mark.parametrize("method", ["none", "nf4"])
def test_load_base_places_every_model_on_the_gpu(monkeypatch, tmp_path, tiny_model, arith_raw, method):
    """NF4 and plain bases alike are loaded straight onto cuda:LOCAL_RANK (a plain base used to stay
    on the CPU and be evaluated there); on a CPU machine no device_map is passed for a plain base."""
    from transformers import AutoModelForCausalLM

    params = load(write_params(tmp_path / "p.yaml", arith_raw, tmp_path / "r", quantization={"method": method}))
    real = AutoModelForCausalLM.from_pretrained
    seen = []

    def fake(path, **kwargs):
        seen.append(kwargs)
        return real(path, dtype=torch.float32)

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", fake)
    if not torch.cuda.is_available() and method == "none":
        modeling.load_base(params, tiny_model)
        assert "device_map" not in seen[-1]
    import bitsandbytes  # noqa: F401 - imported for real before CUDA is faked

    cuda_present(monkeypatch)
    monkeypatch.setenv("LOCAL_RANK", "1")
    modeling.load_base(params, tiny_model, quantize=method == "nf4")
    assert seen[-1]["device_map"] == "cuda:1"
    assert ("quantization_config" in seen[-1]) == (method == "nf4")
    assert seen[-1]["use_safetensors"] is True and seen[-1]["trust_remote_code"] is False
    # init-adapter draws lora_A from the CPU RNG on any host: its base stays on the CPU
    modeling.load_base(params, tiny_model, quantize=False, cpu=True)
    assert "device_map" not in seen[-1]


@pytest.mark.parametrize(
    "mode, cuda, bf16_ok, expected",
    [
        ("auto", False, False, False),
        ("auto", True, True, True),
        ("auto", True, False, False),
        ("bf16", False, False, True),
        ("no", True, True, False),
    ],
)
def test_mixed_precision_follows_the_device(monkeypatch, tmp_path, arith_raw, mode, cuda, bf16_ok, expected):
    params = load(write_params(tmp_path / "p.yaml", arith_raw, tmp_path / "r", training={"mixed_precision": mode}))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16_ok)
    assert modeling.use_bf16(params) is expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU arguments")
@pytest.mark.parametrize("deterministic", [False, True])
def test_training_arguments_on_cpu(tmp_path, arith_raw, deterministic):
    from locus.training.loop import training_arguments

    params = load(
        write_params(tmp_path / "p.yaml", arith_raw, tmp_path / "r", training={"deterministic": deterministic})
    )
    args = training_arguments(params, 1e-3, 0, str(tmp_path / "out"))
    assert args.use_cpu and not args.bf16 and not args.tf32
    assert args.full_determinism is deterministic and args.seed == args.data_seed == 0
    assert args.n_gpu == 0 and args.per_device_eval_batch_size == 2 * params.training.per_device_batch_size


def test_deterministic_seeding_switches_torch_to_deterministic_algorithms():
    saved = dict(os.environ)
    cudnn = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    try:
        modeling.seed_everything(0, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled()
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"  # before cuBLAS starts: seeding comes first
        modeling.seed_everything(0)
    finally:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn
        os.environ.clear()
        os.environ.update(saved)


def test_one_gpu_per_job(monkeypatch):
    """A stage that never runs the model is pinned to GPU 0 unless the user (or torchrun) chose:
    the Trainer would otherwise multiply the batch by the GPU count."""
    from locus import cli

    monkeypatch.setattr(cli, "host_gpus", lambda: 4)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    for env, pinned in [({}, "0"), ({"CUDA_VISIBLE_DEVICES": "2"}, "2"), ({"LOCAL_RANK": "0"}, None)]:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
        monkeypatch.delenv("LOCAL_RANK", raising=False)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        with pytest.raises(SystemExit):
            cli.main(["delta", "--help"])
        assert os.environ.get("CUDA_VISIBLE_DEVICES") == pinned


def test_model_jobs_spread_over_the_gpus_and_wait_for_a_free_one(monkeypatch, tmp_path, capsys):
    """locus.cli.claim_gpu: each model job holds the first GPU no other job holds (an flock, freed
    when its process ends), so local parallel jobs and `dvc queue -j N` spread over a host's GPUs;
    with every GPU held, a job waits, saying so, instead of sharing one."""
    import fcntl
    import threading

    from locus import cli
    from locus.stages import delta, represent, train, train_full

    assert train.RUNS_ON_GPU and train_full.RUNS_ON_GPU and represent.RUNS_ON_GPU
    assert not getattr(delta, "RUNS_ON_GPU", False)
    monkeypatch.setattr(cli, "host_gpus", lambda: 2)
    monkeypatch.setenv("LOCUS_GPU_LOCKS", str(tmp_path))
    monkeypatch.setattr(cli, "_CLAIMED", [])

    def other_job_holds(gpu: int) -> int:  # another process's lock: a separate open file, as flock sees it
        fd = os.open(tmp_path / f"gpu{gpu}.lock", os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return fd

    held = other_job_holds(0)
    assert cli.claim_gpu() == "1"  # GPU 0 is another job's
    assert "uses GPU 1" in capsys.readouterr().err
    release = threading.Timer(0.3, os.close, [held])  # the job on GPU 0 ends
    release.start()
    assert cli.claim_gpu(poll_s=0.05) == "0"  # GPU 1 is this process's first claim: it waited for 0
    assert "every GPU here is held by another locus job" in capsys.readouterr().err
    release.join()
    for fd in cli._CLAIMED:
        os.close(fd)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_full_ft_reads_w0_back_exactly_as_loaded(tmp_path, tiny_model, arith_raw, dtype):
    """train-full no longer clones W₀ before training: it reads it back from the model files, which
    must give the loaded parameter bit for bit."""
    from locus.analysis.updates import plain_weights
    from locus.stages.train_full import adapted_weights

    params = load(write_params(tmp_path / "p.yaml", arith_raw, tmp_path / "r", model={"dtype": dtype}))
    model = modeling.load_base(params, tiny_model, quantize=False)
    weights = adapted_weights(model, params.lora.target_modules)
    with plain_weights(tiny_model, params) as w0:
        for name, p in weights.items():
            assert p.dtype == modeling.DTYPES[dtype]
            np.testing.assert_array_equal(w0[name], p.detach().float().cpu().numpy(), err_msg=name)


def test_cpu_only_tests_say_so_and_skip_where_a_gpu_is_visible(monkeypatch):
    """tests marked cpu_only (CPU bit-identity, the CPU NF4 kernel) skip on a GPU host unless
    CUDA_VISIBLE_DEVICES="" hides the GPUs (conftest.gpu_visible)."""
    from conftest import gpu_visible
    from locus import cli

    monkeypatch.setattr(cli, "host_gpus", lambda: 0)
    assert not gpu_visible()
    monkeypatch.setattr(cli, "host_gpus", lambda: 2)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert gpu_visible()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert not gpu_visible()


@pytest.mark.parametrize(
    "env, said",
    [
        ({"CUDA_VISIBLE_DEVICES": "2,3"}, "CUDA_VISIBLE_DEVICES=2,3 shows 2 GPUs to one job"),
        (
            {"CUDA_VISIBLE_DEVICES": "0,1,2"},
            "multiply the batch by 3; give each job one GPU (e.g. CUDA_VISIBLE_DEVICES=0)",
        ),
        ({"WORLD_SIZE": "4", "LOCAL_RANK": "1"}, "WORLD_SIZE=4: a multi-process launch (torchrun) would multiply"),
    ],
)
def test_several_gpus_or_processes_for_one_job_are_refused(monkeypatch, capsys, env, said):
    """Never DataParallel or DDP by accident: a job that would see several GPUs, or run as one of
    several processes, fails at once with one line, before any stage work."""
    from locus import cli

    for key in ("CUDA_VISIBLE_DEVICES", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert cli.main(["delta", "--help"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("locus: error: ") and said in err and len(err.strip().splitlines()) == 1


def test_zero_gpus_per_train_job_hides_the_gpus_in_a_slurm_job(monkeypatch, tmp_path, arith_raw):
    """cluster.gpus_per_train_job: 0 means the CPU even on a SLURM node that does not isolate GPUs;
    outside SLURM (local runs, DVC) the setting changes nothing; more than one GPU per job is refused."""
    from conftest import write_params
    from locus import cli
    from locus.params import ParamsError

    params_file = write_params(tmp_path / "p.yaml", arith_raw, tmp_path / "res")
    argv = ["delta", "--params", str(params_file), "--init", "no", "--final", "no", "--metrics", "no", "--out", "x"]
    for slurm, hidden in [(None, False), ("123", True)]:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
        monkeypatch.delenv("SLURM_JOB_ID", raising=False)
        if slurm:
            monkeypatch.setenv("SLURM_JOB_ID", slurm)
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
        assert cli.main(argv) == 1  # the stage itself fails (no such adapter): params were read first
        assert (os.environ["CUDA_VISIBLE_DEVICES"] == "") == hidden
    with pytest.raises(ParamsError, match="cluster.gpus_per_train_job"):
        load(write_params(tmp_path / "q.yaml", arith_raw, tmp_path / "res", cluster={"gpus_per_train_job": 2}))
