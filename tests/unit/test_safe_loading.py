"""Source-level guarantees: every output goes through io.atomic_path; weights, checkpoints and
configs are only ever loaded safely (safetensors, no remote code, no pickles, yaml.safe_load)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from conftest import REPO

SOURCES = sorted((REPO / "src").rglob("*.py")) + sorted((REPO / "workflow").rglob("*.smk")) + [REPO / "Snakefile"]
WRITERS = {"to_parquet", "save_pretrained", "save_file", "save", "write_text", "write_bytes", "savefig", "to_json"}


def calls(path: Path) -> list[ast.Call]:
    if path.suffix != ".py":
        return []
    return [n for n in ast.walk(ast.parse(path.read_text(encoding="utf-8"))) if isinstance(n, ast.Call)]


def name_of(call: ast.Call) -> str:
    return ast.unparse(call.func)


def kwargs_of(call: ast.Call) -> dict:
    return {k.arg: ast.unparse(k.value) for k in call.keywords}


def unguarded_writes(path: Path) -> list[str]:
    """File-writing calls not aimed at the temporary path of an enclosing `io.atomic_path` block."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    guarded = set()
    for node in (n for n in ast.walk(tree) if isinstance(n, ast.With)):
        names = {
            ast.unparse(i.optional_vars)
            for i in node.items
            if i.optional_vars is not None and ast.unparse(i.context_expr).split("(")[0].endswith("atomic_path")
        }
        for inner in (n for stmt in node.body for n in ast.walk(stmt) if isinstance(n, ast.Call)):
            targets = inner.args[:1] + [inner.func]
            if any(isinstance(x, ast.Name) and x.id in names for t in targets for x in ast.walk(t)):
                guarded.add(id(inner))
    found = []
    for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
        method = call.func.attr if isinstance(call.func, ast.Attribute) else ""
        writes = method in WRITERS and (call.args or method in ("write_text", "write_bytes"))
        mode = call.args[1] if len(call.args) > 1 else next((k.value for k in call.keywords if k.arg == "mode"), None)
        opens = name_of(call) == "open" and isinstance(mode, ast.Constant) and bool(set(str(mode.value)) & set("wax+"))
        # io.* write atomically themselves; self.* helpers are checked where they are defined.
        if (writes or opens) and id(call) not in guarded and not name_of(call).startswith(("io.", "self.")):
            found.append(f"{path.relative_to(REPO)}:{call.lineno}: {ast.unparse(call)[:80]}")
    return found


def test_every_output_is_written_through_atomic_path():
    """io.py implements atomic_path; checkpoints.py writes only inside its staging dir (atomic by rename)."""
    problems = [
        p
        for path in sorted((REPO / "src" / "locus").rglob("*.py"))
        if path.name not in ("io.py", "checkpoints.py")
        for p in unguarded_writes(path)
    ]
    assert not problems, problems


def test_the_atomic_write_check_catches_a_direct_write(tmp_path, monkeypatch):
    monkeypatch.setattr("test_safe_loading.REPO", tmp_path)
    stage = tmp_path / "stage.py"
    stage.write_text(
        "from locus import io\n"
        "def run(table, out):\n"
        "    with io.atomic_path(out) as tmp:\n"
        "        table.to_parquet(tmp)\n"
        "    table.to_parquet(out)\n"
        "    open(out, 'w').write('x')\n"
    )
    assert [line.split(":")[1] for line in unguarded_writes(stage)] == ["5", "6"]


def test_never_remote_code_pickles_or_unsafe_yaml():
    problems = []
    for path in SOURCES:
        text, rel = path.read_text(encoding="utf-8"), path.relative_to(REPO)
        if re.search(r"trust_remote_code\s*=\s*True", text):
            problems.append(f"{rel}: trust_remote_code=True")
        if re.search(r"^\s*(import pickle|from pickle|import dill|import joblib)", text, re.M):
            problems.append(f"{rel}: pickle-based serialization")
        for call in calls(path):
            name, kwargs = name_of(call), kwargs_of(call)
            if name in ("torch.load", "pickle.load", "pickle.loads", "yaml.load", "yaml.unsafe_load", "yaml.full_load"):
                problems.append(f"{rel}:{call.lineno}: {name}")
            if name.endswith("save_pretrained") and kwargs.get("safe_serialization", "True") != "True":
                problems.append(f"{rel}:{call.lineno}: save_pretrained without safetensors")
            if name.endswith("from_pretrained") and kwargs.get("trust_remote_code", "False") != "False":
                problems.append(f"{rel}:{call.lineno}: trust_remote_code not False")
    assert not problems, problems


def test_model_loading_demands_safetensors():
    """Every AutoModel*.from_pretrained in Locus passes use_safetensors=True (or loads a verified GGUF)."""
    found = 0
    for path in (p for p in SOURCES if p.suffix == ".py"):
        # `kwargs = dict(..., use_safetensors=True)` passed on as `**kwargs` counts too.
        safe_dicts = {
            ast.unparse(n.targets[0])
            for n in ast.walk(ast.parse(path.read_text()))
            if isinstance(n, ast.Assign)
            and isinstance(n.value, ast.Call)
            and name_of(n.value) == "dict"
            and kwargs_of(n.value).get("use_safetensors") == "True"
        }
        for call in calls(path):
            if re.match(r"AutoModel\w*\.from_pretrained$", name_of(call)):
                kwargs = kwargs_of(call)
                safe = kwargs.get("use_safetensors") == "True" or kwargs.get(None) in safe_dicts
                assert safe or "gguf_file" in kwargs, f"{path}:{call.lineno}"
                found += 1
    assert found >= 2


def test_trainer_resume_reads_pickles_with_weights_only():
    """Resuming loads optimizer.pt / scheduler.pt / rng_state.pth with torch.load: check the installed
    transformers passes weights_only=True on every call (no arbitrary code from a checkpoint)."""
    import transformers.trainer

    loads = [c for c in calls(Path(transformers.trainer.__file__)) if name_of(c) == "torch.load"]
    assert loads
    for call in loads:
        assert kwargs_of(call).get("weights_only") == "True", f"trainer.py:{call.lineno}"


def test_params_yaml_cannot_run_code(tmp_path, monkeypatch):
    from locus.params import ParamsError, load

    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.yaml").write_text("grid: !!python/object/apply:os.system ['touch pwned']\n")
    with pytest.raises(ParamsError, match=r"p.yaml:1: invalid YAML"):
        load("p.yaml")
    assert not (tmp_path / "pwned").exists()
