"""The package's layering holds: import-linter's contracts (pyproject.toml) are all kept, and
the stages that only handle tables never load the deep-learning stack."""

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO


def test_import_contracts_are_kept():
    lint = Path(sys.executable).parent / "lint-imports"
    run = subprocess.run(
        [str(lint), "--config", str(REPO / "pyproject.toml")], cwd=REPO, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "0 broken" in run.stdout


@pytest.mark.parametrize("stage", ["delta", "aggregate", "report", "rank_layers"])
def test_table_only_stages_do_not_import_torch(stage):
    """Stages that read and write tables start in a fraction of a second: no torch, transformers or peft."""
    probe = (
        f"import sys, locus.cli, locus.stages.{stage}; "
        "print(','.join(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))"
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == "", f"locus {stage} imports {run.stdout.strip()}"
