"""The small language the physics templates are written in (`physics_templates/`).

Every quantity carries SI base-dimension exponents; arithmetic propagates them, adding unlike
dimensions raises `DimensionError`, and each shown intermediate and the final answer is converted
to its unit only after its dimension is checked against that unit's. Given values are rounded to
their displayed significant figures *before* they are used, so the answer can be recomputed
exactly from the numbers printed in the problem. A template works on a `Draft` and returns the
`Worked` problem it solves; `physics.py` draws and collects them.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from fractions import Fraction

SOURCE = "locus-physics-generator"
LICENCE = "Apache-2.0"
SIG_FIGS = 3

# ------------------------------------------------------------------------------- dimensions

BASE_UNITS = ("kg", "m", "s", "A", "K", "mol")
Dim = tuple  # tuple[Fraction, ...] of exponents, one per BASE_UNITS entry


def dim(kg=0, m=0, s=0, A=0, K=0, mol=0) -> Dim:  # noqa: N803 - SI symbols
    return tuple(Fraction(x) for x in (kg, m, s, A, K, mol))


DIMENSIONLESS = dim()


class DimensionError(ValueError):
    """A formula combined or reported quantities with inconsistent SI dimensions."""


def describe(d: Dim) -> str:
    parts = [u if e == 1 else f"{u}^{e}" for u, e in zip(BASE_UNITS, d) if e != 0]
    return "·".join(parts) or "1"


@dataclass(frozen=True)
class Quantity:
    """A value in SI base units, its dimension exponents and, for given values, how it is shown:
    `text` as stated in the problem ("23.5 g") and `n` as substituted: the bare SI number
    ("0.0235"), or the text itself for angles, which stay in degrees inside sin/cos."""

    si: float
    dim: Dim
    text: str | None = None
    n: str | None = None

    def _combine(self, other, sign: int) -> Quantity:
        other = as_quantity(other)
        if other.dim != self.dim:
            raise DimensionError(f"cannot add {describe(self.dim)} and {describe(other.dim)}")
        return Quantity(self.si + sign * other.si, self.dim)

    def __add__(self, other):
        return self._combine(other, 1)

    def __radd__(self, other):
        return as_quantity(other)._combine(self, 1)

    def __sub__(self, other):
        return self._combine(other, -1)

    def __rsub__(self, other):
        return as_quantity(other)._combine(self, -1)

    def __neg__(self):
        return Quantity(-self.si, self.dim)

    def __mul__(self, other):
        other = as_quantity(other)
        return Quantity(self.si * other.si, tuple(a + b for a, b in zip(self.dim, other.dim)))

    __rmul__ = __mul__

    def __truediv__(self, other):
        other = as_quantity(other)
        return Quantity(self.si / other.si, tuple(a - b for a, b in zip(self.dim, other.dim)))

    def __rtruediv__(self, other):
        return as_quantity(other) / self

    def __pow__(self, p):
        p = Fraction(p).limit_denominator(16)
        return Quantity(self.si ** float(p), tuple(a * p for a in self.dim))


def as_quantity(x) -> Quantity:
    if isinstance(x, Quantity):
        return x
    if isinstance(x, (int, float)):
        return Quantity(float(x), DIMENSIONLESS)
    raise TypeError(f"not a quantity: {x!r}")


def sqrt(x) -> Quantity:
    return as_quantity(x) ** Fraction(1, 2)


def _scalar_fn(fn):
    def wrapped(x) -> Quantity:
        x = as_quantity(x)
        if x.dim != DIMENSIONLESS:
            raise DimensionError(f"{fn.__name__}() needs a dimensionless argument, got {describe(x.dim)}")
        return Quantity(fn(x.si), DIMENSIONLESS)

    wrapped.__name__ = fn.__name__
    return wrapped


sin, cos, tan, asin, exp, log = map(_scalar_fn, (math.sin, math.cos, math.tan, math.asin, math.exp, math.log))

# ------------------------------------------------------------------------------------ units

_M, _L, _T, _I, _K, _N = dim(kg=1), dim(m=1), dim(s=1), dim(A=1), dim(K=1), dim(mol=1)
_SPEED, _ACCEL = dim(m=1, s=-1), dim(m=1, s=-2)
_FORCE, _ENERGY = dim(kg=1, m=1, s=-2), dim(kg=1, m=2, s=-2)
_POWER, _PRESSURE = dim(kg=1, m=2, s=-3), dim(kg=1, m=-1, s=-2)
_VOLT, _OHM = dim(kg=1, m=2, s=-3, A=-1), dim(kg=1, m=2, s=-3, A=-2)
_FARAD, _COULOMB = dim(kg=-1, m=-2, s=4, A=2), dim(s=1, A=1)

UNITS: dict[str, tuple[float, Dim]] = {
    "": (1.0, DIMENSIONLESS),
    "°": (math.pi / 180, DIMENSIONLESS),
    "rad": (1.0, DIMENSIONLESS),
    "kg": (1.0, _M),
    "g": (1e-3, _M),
    "t": (1e3, _M),
    "m": (1.0, _L),
    "cm": (1e-2, _L),
    "mm": (1e-3, _L),
    "km": (1e3, _L),
    "s": (1.0, _T),
    "ms": (1e-3, _T),
    "min": (60.0, _T),
    "h": (3600.0, _T),
    "Hz": (1.0, dim(s=-1)),
    "m^-1": (1.0, dim(m=-1)),
    "kHz": (1e3, dim(s=-1)),
    "MHz": (1e6, dim(s=-1)),
    "m/s": (1.0, _SPEED),
    "km/s": (1e3, _SPEED),
    "km/h": (1 / 3.6, _SPEED),
    "m/s²": (1.0, _ACCEL),
    "N": (1.0, _FORCE),
    "kN": (1e3, _FORCE),
    "J": (1.0, _ENERGY),
    "mJ": (1e-3, _ENERGY),
    "kJ": (1e3, _ENERGY),
    "MJ": (1e6, _ENERGY),
    "mW": (1e-3, _POWER),
    "W": (1.0, _POWER),
    "kW": (1e3, _POWER),
    "kg·m/s": (1.0, dim(kg=1, m=1, s=-1)),
    "Pa": (1.0, _PRESSURE),
    "kPa": (1e3, _PRESSURE),
    "V": (1.0, _VOLT),
    "A": (1.0, _I),
    "mA": (1e-3, _I),
    "Ω": (1.0, _OHM),
    "kΩ": (1e3, _OHM),
    "F": (1.0, _FARAD),
    "μF": (1e-6, _FARAD),
    "C": (1.0, _COULOMB),
    "mC": (1e-3, _COULOMB),
    "μC": (1e-6, _COULOMB),
    "K": (1.0, _K),
    "mol": (1.0, _N),
    "J/(kg·K)": (1.0, dim(m=2, s=-2, K=-1)),
    "J/(mol·K)": (1.0, dim(kg=1, m=2, s=-2, K=-1, mol=-1)),
    "m³": (1.0, dim(m=3)),
    "L": (1e-3, dim(m=3)),
    "cm³": (1e-6, dim(m=3)),
    "kg/m³": (1.0, dim(kg=1, m=-3)),
    "N/m": (1.0, dim(kg=1, s=-2)),
    "N·m²/kg²": (1.0, dim(kg=-1, m=3, s=-2)),
}
SI_NAMES = {d: u for u, (scale, d) in reversed(UNITS.items()) if scale == 1 and u not in ("", "rad")}
ANSWER_UNIT_NAMES = {"°": "degrees"}  # the Answer line always reads "<value> <unit>"


def q(value: float, unit: str) -> Quantity:
    scale, d = UNITS[unit]
    return Quantity(value * scale, d)


def in_unit(x: Quantity, unit: str) -> float:
    """`x` expressed in `unit`, after checking that their dimensions agree."""
    scale, d = UNITS[unit]
    if x.dim != d:
        raise DimensionError(f"result has dimension {describe(x.dim)} but {unit!r} is {describe(d)}")
    return x.si / scale


def best_unit(x: Quantity, units: list[str]) -> str:
    """The first of `units` that puts |x| in [1, 1000), else the one closest to that range."""

    def badness(u: str) -> float:
        v = abs(in_unit(x, u))
        return 0.0 if 1 <= v < 1000 else abs(math.log10(v) - 1.5) if v else math.inf

    return min(units, key=badness)


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
