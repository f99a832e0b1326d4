"""A fresh clone is a DVC repository: `.dvc/` and `.dvcignore` are committed, no `dvc init` needed."""

import subprocess

from conftest import REPO, run_tool


def test_a_fresh_clone_is_a_dvc_repository(tmp_path):
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    assert (clone / ".dvc" / "config").exists() and (clone / ".dvcignore").exists()
    result = run_tool(clone, "dvc", "stage", "list")
    assert result.returncode == 0, result.stderr
    assert "prepare_model" in result.stdout and "train@" in result.stdout
    assert "__pycache__" in (clone / ".dvcignore").read_text()
