import pytest
import yaml

from locus.params import ParamsError, load, lr_label


def write(tmp_path, text):
    p = tmp_path / "params.yaml"
    p.write_text(text)
    return p


def test_default_params_validate():
    p = load("params.yaml")
    assert p.lora.r == 16 and p.lora.alpha == 32 and p.lora.dropout == 0.05
    assert p.lora.target_modules == ["q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj"]
    assert p.quantization.method == "nf4" and p.quantization.double_quant
    assert p.quantization.compute_dtype == "bfloat16"
    assert p.grid.learning_rates == [0.0002, 0.001]
    assert p.training.per_device_batch_size == 2 and p.training.grad_accum_steps == 4
    assert p.training.lr_scheduler == "cosine" and p.training.epochs == 1


def test_smoke_preset_overlays_defaults():
    p = load("params.yaml", "smoke")
    assert p.results_dir == "results/smoke"
    assert p.lora.r == 16  # untouched keys come from params.yaml
    assert p.grid.learning_rates == load("params.yaml").grid.learning_rates
    assert p.grid.domains == ["physics", "math_linguistic"] and p.grid.seeds == [0]  # the preset's own


def test_epoch_presets_extend_the_full_protocol():
    full, cpu, sizing = (load("params.yaml", name) for name in ("epoch", "epoch_cpu", "epoch_sizing"))
    assert full.data.max_train_examples is None and full.training.epochs == 1 and full.training.max_steps == -1
    assert full.training.snapshot_every == 8 and full.trajectory.domains == full.grid.domains
    assert len(full.grid.seeds) >= 2 and full.grid.learning_rates == [0.0002, 0.001]
    # the subset keeps the protocol and narrows only the grid (and where it writes)
    assert cpu.training == full.training and cpu.data == full.data and cpu.results_dir == "results/epoch_cpu"
    assert cpu.grid.domains == ["math_thinking", "physics"] and cpu.grid.learning_rates == [0.001]
    assert sizing.training.max_steps == 8 and sizing.grid.domains == cpu.grid.domains  # two levels deep


def test_a_preset_that_extends_itself_or_a_missing_one_fails_naming_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "presets").mkdir()
    (tmp_path / "presets" / "a.yaml").write_text("extends: b\n")
    (tmp_path / "presets" / "b.yaml").write_text("extends: a\n")
    (tmp_path / "presets" / "c.yaml").write_text("extends: nowhere\n")
    (tmp_path / "params.yaml").write_text("grid: {domains: [x]}\n")
    with pytest.raises(ParamsError, match=r"presets/a.yaml: extends: b forms a cycle"):
        load("params.yaml", "b")
    with pytest.raises(ParamsError, match=r"presets/nowhere.yaml: file not found"):
        load("params.yaml", "c")


@pytest.mark.parametrize(
    "text, key",
    [
        ("grid: {domains: [a]}\nlora: {r: 0}\n", "lora.r"),
        ("grid: {domains: [a]}\nlora: {alpha: -1}\n", "lora.alpha"),
        ("grid: {domains: [a], learning_rates: [0.0]}\n", "grid.learning_rates"),
        ("grid: {domains: [a], learning_rates: [5.0]}\n", "grid.learning_rates"),
        ("grid: {domains: [a]}\nlr: -0.1\n", "lr"),
        ("grid: {domains: [a]}\ntraining: {bogus: 1}\n", "training.bogus"),
        ("grid: {domains: [a]}\nunknown_section: 1\n", "unknown_section"),
        ("grid: {domains: [a]}\nquantization: {method: int3}\n", "quantization.method"),
        ("grid: {domains: ['../etc']}\n", "grid.domains"),
        ("grid: {domains: [a, a]}\n", "grid.domains"),
        ("grid: {domains: [a], seeds: [0, 0]}\n", "grid.seeds"),
        ("grid: {domains: [a], learning_rates: [0.001, 1.0e-3]}\n", "grid.learning_rates"),
        ("grid: {domains: [a]}\nlora: {target_modules: [q_proj, q_proj]}\n", "lora.target_modules"),
        ("grid: {domains: [a]}\nvalidation: {seeds: [1, 1]}\n", "validation.seeds"),
        ("lora: {r: 4}\n", "grid"),
    ],
)
def test_bad_values_name_the_key(tmp_path, text, key):
    with pytest.raises(ParamsError) as e:
        load(write(tmp_path, text))
    assert key in str(e.value) and "params.yaml" in str(e.value)


def test_invalid_yaml_names_the_file(tmp_path):
    with pytest.raises(ParamsError, match="invalid YAML"):
        load(write(tmp_path, "grid: [unclosed\n"))


def test_missing_file(tmp_path):
    with pytest.raises(ParamsError, match="file not found"):
        load(tmp_path / "nope.yaml")


def test_lr_label_round_trips():
    for lr in (0.0002, 0.001, 1e-5, 0.1):
        assert float(lr_label(lr)) == lr
    assert lr_label(0.0002) == "0.0002"


def test_a_params_file_with_a_byte_order_mark_loads(tmp_path):
    from pathlib import Path

    repo_params = Path(__file__).resolve().parents[2] / "params.yaml"
    (tmp_path / "p.yaml").write_bytes(b"\xef\xbb\xbf" + repo_params.read_bytes())
    assert load(tmp_path / "p.yaml") == load(repo_params)


def test_every_name_that_becomes_a_path_follows_one_rule(tmp_path):
    """Domains, external analyses and their adapter labels: letters, digits, '_' or '-'."""
    from locus.stages.external import pairs

    for bad in ("../x", "a.b", "a b", ""):
        with pytest.raises(ValueError, match="letters, digits"):
            pairs([f"{bad}=dir"], "--adapter")
    raw = {"external": {"mine": {"model": "m", "adapters": {"v1.2": "d"}}}}
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ParamsError, match="letters, digits"):
        load(tmp_path / "p.yaml")


@pytest.mark.parametrize("value, line", [("0.0005", "lr: 0.0005"), ("1e-3", None), ("2e-4", "lr: 0.0002")])
def test_dvc_set_param_changes_only_the_line_it_sets(tmp_path, value, line):
    """`dvc exp run -S lr=…` rewrites params.yaml through DVC's own override code (hydra overrides,
    ruamel round trip, every list replaced): params.yaml is written so that nothing else moves."""
    from dvc.utils.hydra import apply_overrides

    original = open("params.yaml", encoding="utf-8").read()
    copy = tmp_path / "params.yaml"
    copy.write_text(original, encoding="utf-8")
    apply_overrides(str(copy), [f"lr={value}"])
    changed = [(a, b) for a, b in zip(original.splitlines(), copy.read_text().splitlines()) if a != b]
    assert len(copy.read_text().splitlines()) == len(original.splitlines())
    assert changed == ([("lr: 0.001", line)] if line else [])
