"""Tests for the seeded physics problem generator (locus.ingest.physics, physics_dsl, physics_quantities)."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from locus.ingest import physics
from locus.ingest.physics import build, build_worked, templates
from locus.ingest.physics_dsl import Draft, fmt, sig
from locus.ingest.physics_quantities import DimensionError, in_unit, q, sin, sqrt

KEYS = {"instruction", "response", "source", "licence"}
NUM = r"(-?\d+(?:\.\d+)?)"
ANSWER = re.compile(rf"^Answer: {NUM} (\S.*)$")


@pytest.fixture(scope="module")
def worked_1000():
    return build_worked(seed=0, n=1000)


@pytest.fixture(scope="module")
def records_1000():
    return build(seed=0, n=1000)


def _answer(response: str) -> tuple[float, str]:
    last = response.splitlines()[-1]
    m = ANSWER.match(last)
    assert m, f"bad answer line: {last!r}"
    return float(m.group(1)), m.group(2)


# ------------------------------------------------------------------------------ records


def test_determinism_byte_for_byte(records_1000):
    again = build(seed=0, n=1000)
    assert json.dumps(again, ensure_ascii=False) == json.dumps(records_1000, ensure_ascii=False)
    assert build(seed=1, n=50) != build(seed=0, n=50)


def test_the_committed_physics_data_is_what_the_generator_writes(tmp_path):
    """data/raw/physics.jsonl is `python -m locus.ingest physics` (seed 0, the module's n): a change
    to a template, to the templates' draw order or to the DSL shows up here, not as a silent new dataset."""
    from locus.ingest import write_domain

    write_domain("physics", tmp_path / "physics.jsonl", seed=0, n=None)
    committed = Path(__file__).resolve().parents[2] / "data" / "raw" / "physics.jsonl"
    assert (tmp_path / "physics.jsonl").read_bytes() == committed.read_bytes()


def test_determinism_across_processes():
    """Same output in a fresh interpreter with a different hash seed (no set/hash-order leaks)."""
    code = (
        "import hashlib, json; from locus.ingest.physics import build; "
        "print(hashlib.sha256(json.dumps(build(3, 200), ensure_ascii=False).encode()).hexdigest())"
    )
    src = str(Path(physics.__file__).resolve().parents[2])
    env = {
        **os.environ,
        "PYTHONHASHSEED": "12345",
        "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")])),
    }
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    here = hashlib.sha256(json.dumps(build(3, 200), ensure_ascii=False).encode()).hexdigest()
    assert out.stdout.strip() == here


@pytest.mark.parametrize("n", [0, 1, 7, 250])
def test_n_respected(n):
    assert len(build(seed=5, n=n)) == n


def test_negative_n_rejected():
    with pytest.raises(ValueError):
        build(seed=0, n=-1)


def test_record_keys_and_values(records_1000):
    for r in records_1000:
        assert set(r) == KEYS
        assert all(isinstance(v, str) and v.strip() for v in r.values())
        assert r["source"] == "locus-physics-generator"
        assert r["licence"] == "Apache-2.0"


def test_records_match_worked(records_1000, worked_1000):
    assert records_1000 == [w.record() for w in worked_1000]


def test_every_template_appears(worked_1000):
    names = set(templates())
    assert len(names) >= 15
    seen = {w.template for w in worked_1000}
    assert seen == names
    counts = [sum(w.template == t for w in worked_1000) for t in names]
    assert max(counts) - min(counts) <= 1  # round-robin


def test_distinct_instructions(records_1000):
    instructions = [r["instruction"] for r in records_1000]
    assert len(set(instructions)) == len(instructions)
    big = build(seed=2, n=3000)
    assert len({r["instruction"] for r in big}) == 3000


def test_response_structure(records_1000):
    for r in records_1000:
        lines = r["response"].splitlines()
        assert lines[0].startswith("Given: ")
        assert lines[1].startswith("Formula: ")
        assert lines[2].startswith(("Substitution: ", "Working:"))
        value, unit = _answer(r["response"])
        assert "×" not in lines[-1]
        # The final answer, with its unit, is the result of the last working line.
        shown = f"{lines[-1].split(' ', 1)[1][: -len(unit) - 1]}"
        assert shown in lines[-2]
        # Short enough for max_seq_length=256 with SmolLM2's tokenizer (measured max ~250 incl. chat template).
        assert len(r["instruction"]) + len(r["response"]) <= 450


# ------------------------------------------------------------- independent recomputation

SCALE = {
    "m": 1,
    "cm": 1e-2,
    "mm": 1e-3,
    "A": 1,
    "mA": 1e-3,
    "J": 1,
    "mJ": 1e-3,
    "kJ": 1e3,
    "MJ": 1e6,
    "kPa": 1e3,
    "Hz": 1,
    "m/s": 1,
    "degrees": 1,
}


def _nums(text: str, unit_regex: str) -> list[float]:
    return [float(x) for x in re.findall(NUM + r"\s?" + unit_regex, text)]


def _recompute(w) -> float:
    """The expected answer in SI units, from the numbers printed in the instruction only."""
    s = w.instruction
    if w.template == "kin_final_velocity":
        (u,), (a,), (t,) = _nums(s, r"m/s(?!²)"), _nums(s, r"m/s²"), _nums(s, r"s\b")
        return u + a * t
    if w.template == "projectile_range":
        (v,), (th,) = _nums(s, r"m/s"), _nums(s, "°")
        return v**2 * math.sin(math.radians(2 * th)) / 9.81
    if w.template == "circuit_series":
        (v,), rs = _nums(s, r"V\b"), _nums(s, "Ω")
        assert len(rs) == 3
        return v / sum(rs)
    if w.template == "ideal_gas":
        (n,), (vol,), (tc,) = _nums(s, "mol"), _nums(s, r"L\b"), _nums(s, "°C")
        return n * 8.314 * (tc + 273.15) / (vol * 1e-3)
    if w.template == "capacitor_energy":
        (c,), (v,) = _nums(s, "μF"), _nums(s, r"V\b")
        return 0.5 * c * 1e-6 * v**2
    if w.template == "heat_capacity":
        (m,), (c,), (t1, t2) = _nums(s, "kg"), _nums(s, r"J/\(kg·K\)"), _nums(s, "°C")
        return m * c * (t2 - t1)
    if w.template == "doppler":
        (f,), speeds = _nums(s, "Hz"), _nums(s, "m/s")
        vs = [x for x in speeds if x != 343.0] or [343.0]
        c = 343.0
        return f * c / (c - vs[0]) if "towards" in s else f * c / (c + vs[0])
    if w.template == "snell":
        (n1, n2), (th1,) = _nums(s, r"(?=\))"), _nums(s, "°")
        return math.degrees(math.asin(n1 * math.sin(math.radians(th1)) / n2))
    raise KeyError(w.template)


CHECKED = [
    "kin_final_velocity",
    "projectile_range",
    "circuit_series",
    "ideal_gas",
    "capacitor_energy",
    "heat_capacity",
    "doppler",
    "snell",
]


@pytest.mark.parametrize("name", CHECKED)
def test_answer_matches_recomputation(worked_1000, name):
    cases = [w for w in worked_1000 if w.template == name]
    assert cases
    for w in cases:
        value, unit = _answer(w.response)
        expected = _recompute(w) / SCALE[unit]
        # The answer is shown to 3 s.f.: at most half a unit in the third figure away.
        tol = 0.5 * 10 ** (math.floor(math.log10(abs(expected))) - 2) * 1.001
        assert abs(value - expected) <= tol, (w.instruction, w.response, expected)


# ------------------------------------------------------------------- dimension checking


def test_dimension_checker_accepts_right_formula():
    m, a = q(2.0, "kg"), q(3.0, "m/s²")
    assert in_unit(m * a, "N") == pytest.approx(6.0)
    length, g = q(1.0, "m"), q(9.81, "m/s²")
    assert in_unit(2 * math.pi * sqrt(length / g), "s") == pytest.approx(2.006, rel=1e-3)
    assert in_unit(0.5 * q(100, "μF") * q(10, "V") ** 2, "mJ") == pytest.approx(5.0)


def test_dimension_checker_rejects_wrong_formula():
    m, a, u, t = q(2.0, "kg"), q(3.0, "m/s²"), q(4.0, "m/s"), q(5.0, "s")
    with pytest.raises(DimensionError):
        in_unit(m * a * a, "N")  # kg·m²/s⁴ is not a force
    with pytest.raises(DimensionError):
        u + a  # v = u + a, missing the t
    with pytest.raises(DimensionError):
        in_unit(u * t, "m/s")
    with pytest.raises(DimensionError):
        sin(q(1.0, "m"))


def test_template_with_wrong_formula_is_rejected(monkeypatch):
    def bad(d: Draft):
        u = d.draw("initial speed", "u", 1, 5, "m/s")
        t = d.draw("time", "t", 1, 5, "s")
        v = u * t  # wrong: a distance, reported as a speed
        return d.solve(f"Speed? {u.text} {t.text}", "v = u·t", [f"v = {u.n} × {t.n} = ?"], "v", v, "m/s")

    monkeypatch.setattr(physics, "templates", lambda: {"bad": bad})
    with pytest.raises(DimensionError):
        build(seed=0, n=1)


def test_dedup_exhaustion_raises(monkeypatch):
    def two_variants(d: Draft):
        k = d.rng.randint(1, 2)
        x = d.give("x", "x", k, "m", sf=1)
        return d.solve(f"Copy {x.text}.", "y = x", [f"y = {d.show(x, 'm')}"], "y", x, "m")

    monkeypatch.setattr(physics, "templates", lambda: {"two": two_variants})
    assert len({r["instruction"] for r in build(seed=0, n=2)}) == 2
    with pytest.raises(RuntimeError):
        build(seed=0, n=3)


# --------------------------------------------------------------------------- formatting


@pytest.mark.parametrize(
    "x, text",
    [
        (0.012345, "0.0123"),
        (9.996, "10.0"),
        (2400, "2400"),
        (123456, "1.23 × 10^5"),
        (6.674e-11, "6.67 × 10^-11"),
        (0.5, "0.500"),
        (-3.14159, "-3.14"),
        (99950, "1.00 × 10^5"),
    ],
)
def test_fmt_significant_figures(x, text):
    assert fmt(x) == text
    assert sig(x) == float(text.replace(" × 10^", "e"))
