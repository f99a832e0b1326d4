"""Math (thinking) domain: competition problems with human-written step-by-step solutions, topped up
with symbolic step-by-step solutions from a SymPy-based solver.

Sources:

* ``champ-dataset==1.0.0`` (MIT): ``champ_dataset/dataset_files/v0.json`` read straight from the
  wheel; 270 competition-level problems (CHAMP) with human-written ``solution.steps`` and a final
  answer. The GPT transcripts in the same file (``fws_annotations``) are ignored.
  Mapping: problem -> numbered solution steps + "Answer: ...".
* ``ed-master-smartsolver==0.4.1`` (MIT, import name ``smartsolver``): seeded templates of
  linear/quadratic equations, 2x2 linear systems, derivatives, integrals and limits, solved by
  SmartSolver with rule-labelled steps. It must run, so it runs inside ``.venv-ingest`` with
  PYTHONHASHSEED fixed. Mapping: task -> rendered steps + "Answer: ...".
"""

from __future__ import annotations

import json
import re
import zipfile

from .common import Artefact, dedup, fetch, make_record, run_worker

CHAMP = Artefact(
    kind="pypi",
    spec="champ-dataset==1.0.0",
    filename="champ_dataset-1.0.0-py3-none-any.whl",
    sha256="aa59df5ae28e2ec76a401a46faf3d6395920be8009a01ce451f7d5c131d82201",
)
SMARTSOLVER = Artefact(  # verified before use; installed into .venv-ingest from this cached file
    kind="pypi",
    spec="ed-master-smartsolver==0.4.1",
    filename="ed_master_smartsolver-0.4.1-py3-none-any.whl",
    sha256="071fd8d43c79dfb935fd10c3a77aeb8850ec5edad81ce970aeda25fcee806561",
)
CHAMP_SOURCE, SS_SOURCE = "champ-dataset 1.0.0 (CHAMP v0)", "ed-master-smartsolver 0.4.1 (generated)"
DEFAULT_N = 700


def read_champ() -> list[dict]:
    """CHAMP problems sorted by identifier (natural order of the trailing number)."""
    with zipfile.ZipFile(fetch(CHAMP)) as zf:
        data = json.loads(zf.read("champ_dataset/dataset_files/v0.json"))
    key = lambda pid: (re.sub(r"_\d+$", "", pid), int(re.search(r"(\d+)$", pid).group(1)))
    return [data["problems"][pid] for pid in sorted(data["problems"], key=key)]


def champ_record(p: dict) -> dict | None:
    steps = [s["_text"].strip() for s in p["solution"]["steps"] if s["_text"].strip()]
    if not steps or not p["_answer"].strip():
        return None
    body = "\n".join(f"Step {i}: {s}" for i, s in enumerate(steps, 1))
    return make_record(p["_text"], f"{body}\n\nAnswer: {p['_answer'].strip()}", CHAMP_SOURCE, "MIT")


def _generate(seed: int, count: int) -> list:
    """Runs in .venv-ingest: [[task, steps_text, answer], ...] from seeded problem templates."""
    import random
    import re
    from importlib.metadata import version

    from smartsolver import SmartSolver

    want = {"ed-master-smartsolver": "0.4.1", "sympy": "1.14.0"}  # output text depends on both
    if any(version(k) != v for k, v in want.items()):
        raise RuntimeError(f"need {want} in .venv-ingest (see requirements-ingest.txt)")
    rng, solver, out, seen = random.Random(seed), SmartSolver(), [], set()

    def nz(a, b):
        v = 0
        while v == 0:
            v = rng.randint(a, b)
        return v

    def tidy(text):  # "+ -3" -> "- 3", "1*x" -> "x", "x**1" -> "x"
        text = text.replace("+ -", "- ").replace("- (-", "+ (").replace("--", "+")
        text = re.sub(r"(?<![\d.*])1(?=[a-z])", "", text)  # "1x" -> "x"
        return re.sub(r"\*\*1\b", "", re.sub(r"(?<![\d.*])1\*", "", text))

    def poly():
        terms = [(nz(-9, 9), e) for e in sorted(rng.sample(range(0, 6), 3), reverse=True)]
        return tidy(" + ".join(f"{c}*x**{e}" if e > 1 else f"{c}*x" if e == 1 else f"{c}" for c, e in terms))

    def render(steps, prefix=""):
        lines = []
        for i, st in enumerate(steps, 1):
            num = f"{prefix}{i}"
            desc = re.sub(r"^Step \d+:\s*", "", st.description.strip())
            line = f"Step {num} ({st.rule_applied}): {desc}" if st.rule_applied else f"Step {num}: {desc}"
            if st.expression and st.expression not in desc:
                line += f"\n  = {st.expression}"
            lines.append(line)
            lines += render(st.substeps or [], f"{num}.")
        return lines

    funcs = ["sin", "cos", "exp", "log"]
    while len(out) < count:
        kind = rng.choice(
            [
                "linear",
                "quadratic",
                "system",
                "derivative",
                "product",
                "chain",
                "integral",
                "parts",
                "definite",
                "limit",
            ]
        )
        a, b, r1, r2 = nz(-9, 9), rng.randint(-20, 20), rng.randint(-9, 9), rng.randint(-9, 9)
        if kind == "linear":
            x = rng.randint(-12, 12)
            eq = f"{a}x + {b} = {a * x + b}".replace("+ -", "- ")
            task, res, ans = f"Solve for x: {eq}", lambda: solver.solve_equation(eq, "x"), "solutions"
        elif kind == "quadratic":
            eq = f"x^2 + {-(r1 + r2)}x + {r1 * r2} = 0".replace("+ -", "- ")
            task, res, ans = f"Solve for x: {eq}", lambda: solver.solve_equation(eq, "x"), "solutions"
        elif kind == "system":
            x, y, c, d = rng.randint(-6, 6), rng.randint(-6, 6), nz(-5, 5), nz(-5, 5)
            a2 = nz(-5, 5)
            if a * d - c * a2 == 0:
                continue
            eqs = [f"{a}*x + {c}*y = {a * x + c * y}", f"{a2}*x + {d}*y = {a2 * x + d * y}"]
            task = (
                f"Solve the system of equations: {a}x + {c}y = {a * x + c * y} and {a2}x + {d}y = {a2 * x + d * y}"
            ).replace("+ -", "- ")
            res, ans = lambda: solver.solve_linear_system(eqs, ["x", "y"]), "solutions_by_variable"
        elif kind in ("derivative", "product", "chain"):
            inner = tidy(f"{a}*x + {nz(-9, 9)}")
            f = tidy(
                {
                    "derivative": poly(),
                    "product": f"x**{rng.randint(1, 4)}*{rng.choice(funcs)}(x)",
                    "chain": rng.choice(
                        [
                            f"{rng.choice(funcs[:3])}({inner})",
                            f"({inner})**{rng.randint(2, 6)}",
                            f"exp({a}*x**2)",
                            f"log({tidy(poly())})",
                        ]
                    ),
                }[kind]
            )
            task, res, ans = (
                f"Differentiate f(x) = {f} with respect to x.",
                lambda: solver.differentiate(f, "x"),
                "derivative",
            )
        elif kind in ("integral", "parts", "definite"):
            f = poly() if kind != "parts" else tidy(f"x**{rng.randint(1, 2)}*{rng.choice(funcs[:3])}({nz(1, 3)}*x)")
            lo, hi = sorted(rng.sample(range(-3, 5), 2)) if kind == "definite" else (None, None)
            task = (
                f"Evaluate the definite integral of {f} from x = {lo} to x = {hi}."
                if lo is not None
                else f"Find the indefinite integral of {f} with respect to x."
            )
            res = lambda: solver.integrate(f, "x", None if lo is None else str(lo), None if hi is None else str(hi))
            ans = "integral"
        else:
            r = rng.randint(-6, 6)
            f = rng.choice([f"(x**2 - {r * r})/(x - {r})", f"sin({abs(a)}*x)/x", f"({poly()})/(x**2 + 1)"])
            pt = "0" if f.startswith("sin") else str(r)
            task = f"Find the limit of {f} as x approaches {pt}."
            res, ans = lambda: solver.limit(f, "x", pt), "limit"
        task = tidy(task)
        if task in seen:
            continue
        seen.add(task)
        try:
            result = res()
        except Exception:
            continue
        if not result.get("steps") or result.get("steps_verified") is False or result.get(ans) in (None, [], {}):
            continue
        answer = result[ans]
        if isinstance(answer, dict):
            answer = ", ".join(f"{k} = {v}" for k, v in sorted(answer.items(), key=str))
        elif isinstance(answer, list):
            answer = " or ".join(f"x = {v}" for v in answer)
        out.append([task, "\n".join(render(result["steps"])), str(answer)])
    return out


def smartsolver_records(seed: int, count: int) -> list[dict]:
    fetch(SMARTSOLVER)  # pinned wheel (cached for provenance); the worker checks the installed version
    raw = run_worker(_generate, seed=seed, count=count)
    return [r for r in (make_record(t, f"{s}\n\nAnswer: {a}", SS_SOURCE, "MIT") for t, s, a in raw) if r]


def build(seed: int = 0, n: int | None = DEFAULT_N) -> list[dict]:
    """All CHAMP problems, then SmartSolver problems up to ``n`` records in total."""
    n = DEFAULT_N if n is None else n
    champ = [r for r in map(champ_record, read_champ()) if r]
    extra = smartsolver_records(seed, max(0, int((n - len(champ)) * 1.15) + 10)) if n > len(champ) else []
    return dedup(champ + extra, near=0.9, limit=n)
