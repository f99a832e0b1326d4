"""The small language the physics templates are written in (`physics_templates/`).

Every quantity carries SI base-dimension exponents (`physics_quantities`), so each shown
intermediate and the final answer is converted to its unit only after its dimension is checked
against that unit's. Given values are rounded to their displayed significant figures *before*
they are used, so the answer can be recomputed exactly from the numbers printed in the problem.
A template works on a `Draft` and returns the `Worked` problem it solves; `physics.py` draws and
collects them.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass

from locus.ingest.physics_quantities import SI_NAMES, UNITS, Quantity, in_unit

SOURCE = "locus-physics-generator"
LICENCE = "Apache-2.0"
SIG_FIGS = 3
ANSWER_UNIT_NAMES = {"°": "degrees"}  # the Answer line always reads "<value> <unit>"


# ------------------------------------------------------------------------------- formatting


def fmt(x: float, sf: int = SIG_FIGS) -> str:
    """`x` to `sf` significant figures, trailing zeros kept; scientific notation outside 1e-3..1e5."""
    if x == 0:
        return "0" if sf == 1 else "0." + "0" * (sf - 1)
    e = math.floor(math.log10(abs(x)))
    r = round(x, sf - 1 - e)
    if r != 0 and math.floor(math.log10(abs(r))) != e:  # rounding carried into a new decade
        e += 1
        r = round(x, sf - 1 - e)
    if -3 <= e < 5:
        return f"{r:.{max(sf - 1 - e, 0)}f}"
    return f"{r / 10**e:.{sf - 1}f} × 10^{e}"


def parse_number(text: str) -> float:
    return float(text.replace(" × 10^", "e"))


def sig(x: float, sf: int = SIG_FIGS) -> float:
    """`x` rounded to exactly the value `fmt(x, sf)` displays."""
    return parse_number(fmt(x, sf))


def art(phrase: str, cap: bool = False) -> str:
    """`phrase` with its indefinite article: "an 8.00 kg crate", "a 12.0 kg crate", "an ambulance"."""
    head = phrase.split(" ", 1)[0]
    digits = re.match(r"\d+", head)
    if digits:
        ip = digits.group()
        vowel = ip.startswith("8") or (len(ip) in (2, 5) and ip[:2] in ("11", "18"))
    else:
        vowel = head[:1].lower() in "aeio"
    word = "an" if vowel else "a"
    return (word.capitalize() if cap else word) + " " + phrase


def _bracket(number: str) -> str:
    """Scientific notation in parentheses, so "1560 / (9.45 × 10^6)" parses as meant."""
    return f"({number})" if "×" in number else number


def with_unit(number: str, unit: str) -> str:
    return number + unit if unit in ("°", "") else f"{number} {unit}"


# --------------------------------------------------------------------------- worked problems


@dataclass(frozen=True)
class Worked:
    template: str
    instruction: str
    given: tuple[str, ...]
    formula: str
    work: tuple[str, ...]
    symbol: str
    value: float  # the unrounded answer in `unit`
    unit: str

    @property
    def answer(self) -> str:
        return f"{fmt(self.value)} {ANSWER_UNIT_NAMES.get(self.unit, self.unit)}".strip()

    @property
    def response(self) -> str:
        lines = [f"Given: {', '.join(self.given)}", f"Formula: {self.formula}"]
        if len(self.work) == 1:
            lines.append(f"Substitution: {self.work[0]}")
        else:
            lines.append("Working:")
            lines += [f"{i}. {w}" for i, w in enumerate(self.work, 1)]
        lines.append(f"Answer: {self.answer}")
        return "\n".join(lines)

    def record(self) -> dict:
        return {"instruction": self.instruction, "response": self.response, "source": SOURCE, "licence": LICENCE}


class Draft:
    """What a template fills in while it draws values: the given list and unit-checked displays."""

    def __init__(self, rng: random.Random, template: str = ""):
        self.rng = rng
        self.template = template
        self.given: list[str] = []

    def pick(self, seq):
        return self.rng.choice(seq)

    def uniform(self, lo: float, hi: float, sf: int = SIG_FIGS) -> float:
        return sig(self.rng.uniform(lo, hi), sf)

    def give(self, label: str, sym: str, value: float, unit: str, sf: int = SIG_FIGS, si_note: bool = True) -> Quantity:
        """Register a given value (rounded to `sf` s.f. first) and return it as a Quantity.

        A value in a non-SI unit is listed with its SI conversion unless `si_note` is false
        (for templates whose working uses the stated unit)."""
        number = fmt(value, sf)
        scale, d = UNITS[unit]
        text = with_unit(number, unit)
        si = parse_number(number) * scale
        suffix = ""
        if unit == "°":  # angles stay in degrees inside sin/cos
            n = text
        elif scale == 1:
            n = number
        else:  # state the SI conversion once, then substitute the SI number
            n = _bracket(fmt(si, sf))
            if si_note:
                suffix = f" = {with_unit(fmt(si, sf), SI_NAMES[d])}"
        self.given.append(f"{sym} = {text}{suffix}")
        return Quantity(si, d, text, n)

    def draw(self, label: str, sym: str, lo: float, hi: float, unit: str, sf: int = SIG_FIGS) -> Quantity:
        return self.give(label, sym, self.rng.uniform(lo, hi), unit, sf)

    def note(self, line: str) -> None:
        """Add a given entry the template formats itself (e.g. a °C reading converted to K)."""
        self.given.append(line)

    @staticmethod
    def si(x: Quantity, sf: int = SIG_FIGS) -> str:
        """An intermediate value as a bare SI number, for substituting into the next step."""
        return _bracket(fmt(x.si, sf))

    def show(self, x: Quantity, unit: str, sf: int = SIG_FIGS) -> str:
        return with_unit(fmt(in_unit(x, unit), sf), unit)

    def show_then(self, x: Quantity, si_unit: str, unit: str) -> str:
        """`x` in its SI unit, then converted to the answer's `unit` when that differs: "0.450 m = 45.0 cm"."""
        return self.show(x, si_unit) + (f" = {self.show(x, unit)}" if unit != si_unit else "")

    def solve(
        self, instruction: str, formula: str, work: list[str], symbol: str, result: Quantity, unit: str
    ) -> Worked:
        value = in_unit(result, unit)  # the dimension check of the final formula
        if not math.isfinite(value):
            raise ArithmeticError(f"{self.template}: non-finite answer")
        shown = with_unit(fmt(value), unit)
        if not (work and work[-1].startswith(f"{symbol} = ") and shown in work[-1]):
            raise ValueError(f"{self.template}: the last working line must give {symbol} = ... = {shown}")
        instruction = " ".join(instruction.split())
        instruction = instruction[:1].upper() + instruction[1:]
        return Worked(self.template, instruction, tuple(self.given), formula, tuple(work), symbol, value, unit)
