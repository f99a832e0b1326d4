"""SI quantities for the physics templates: values that carry their base-dimension exponents.

Arithmetic propagates the exponents, adding unlike dimensions raises `DimensionError`, and a value
is converted to a unit (`in_unit`) only after its dimension is checked against that unit's. The
units the templates state, with their SI scale, are in `UNITS`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

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
