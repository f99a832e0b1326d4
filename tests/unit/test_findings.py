"""docs/findings/study/tables.md is what benchmarks/study_tables.py computes from the study's committed tables.

So the numbers docs/findings.md quotes cannot drift from the run's parquet files, nor from the
analysis code that words them (profile verdicts, seed stability, the domain permutation tests).
"""

from pathlib import Path

from study_tables import tables_markdown  # benchmarks/ is on sys.path (tests/conftest.py)

STUDY = Path(__file__).resolve().parents[2] / "docs" / "findings" / "study"


def test_the_committed_study_tables_are_computed_from_its_parquet_files():
    expected = (STUDY / "tables.md").read_text()
    assert tables_markdown(STUDY) == expected, (
        "docs/findings/study/tables.md differs from what the analysis computes now: regenerate it with "
        "`python benchmarks/study_tables.py --tables docs/findings/study > docs/findings/study/tables.md` "
        "and update the numbers docs/findings.md quotes"
    )


def test_the_committed_one_epoch_tables_are_computed_from_its_files():
    from epoch_tables import tables_markdown as epoch_markdown

    epoch = STUDY.parent / "epoch"
    expected = (epoch / "tables.md").read_text()
    assert epoch_markdown(epoch) == expected, (
        "docs/findings/epoch/tables.md differs from what the analysis computes now: regenerate it with "
        "`python benchmarks/epoch_tables.py --tables docs/findings/epoch > docs/findings/epoch/tables.md` "
        "and update the numbers docs/findings.md quotes"
    )


def test_the_committed_methods_tables_are_computed_from_its_files():
    from methods_tables import tables_markdown as methods_markdown

    methods = STUDY.parent / "methods"
    expected = (methods / "tables.md").read_text()
    assert methods_markdown(methods) == expected, (
        "docs/findings/methods/tables.md differs from what the analysis computes now: regenerate it with "
        "`python benchmarks/methods_tables.py --tables docs/findings/methods > docs/findings/methods/tables.md` "
        "and update the numbers docs/findings.md §4 quotes"
    )
