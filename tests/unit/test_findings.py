"""Each run's docs/findings/RUN/tables.md is what benchmarks/RUN_tables.py computes from its committed tables.

So the numbers docs/findings.md quotes cannot drift from the runs' parquet files, nor from the
analysis code that words them (profile verdicts, seed stability, the domain permutation tests,
the methods' agreement sentences).
"""

import importlib
from pathlib import Path

import pytest

FINDINGS = Path(__file__).resolve().parents[2] / "docs" / "findings"


@pytest.mark.parametrize("run", ["study", "epoch", "methods"])  # benchmarks/ is on sys.path (tests/conftest.py)
def test_the_committed_tables_are_computed_from_the_runs_files(run):
    tables_markdown = importlib.import_module(f"{run}_tables").tables_markdown
    expected = (FINDINGS / run / "tables.md").read_text()
    assert tables_markdown(FINDINGS / run) == expected, (
        f"docs/findings/{run}/tables.md differs from what the analysis computes now: regenerate it with "
        f"`python benchmarks/{run}_tables.py --tables docs/findings/{run} > docs/findings/{run}/tables.md` "
        "and update the numbers docs/findings.md quotes"
    )
