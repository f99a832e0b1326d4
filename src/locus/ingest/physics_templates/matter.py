"""Heat, gases and fluids. Physics problem templates (see the package docstring)."""

from __future__ import annotations

from locus.ingest.physics_dsl import Draft, Worked, art
from locus.ingest.physics_quantities import best_unit
from locus.ingest.physics_quantities import q as qty
from locus.ingest.physics_templates.registry import gravity, template

SPECIFIC_HEATS = [("water", 4190), ("aluminium", 897), ("copper", 385), ("iron", 449),
                  ("glass", 840), ("lead", 128), ("olive oil", 1970), ("granite", 790)]
FLUIDS = [("fresh water", 1000), ("seawater", 1025), ("olive oil", 920), ("glycerine", 1260)]


def digits(v: float) -> int:
    """Significant figures to show a tabulated constant exactly (at least 3): 1025 -> 4, 920 -> 3."""
    return max(3, len(f"{v:g}".replace(".", "").replace("-", "").strip("0")))


@template
def heat_capacity(d: Draft) -> Worked:
    name, cv = d.pick(SPECIFIC_HEATS)
    m = d.draw("mass", "m", 0.1, 5, "kg")
    c = d.give(f"specific heat capacity of {name}", "c", cv, "J/(kg·K)")
    t1 = d.rng.randint(5, 30)
    t2 = d.rng.randint(t1 + 10, 95)
    d.note(f"ΔT = {t2} °C − {t1} °C = {t2 - t1} K")  # a °C difference is a K difference
    dt = qty(t2 - t1, "K")
    heat = m * c * dt
    unit = best_unit(heat, ["J", "kJ", "MJ"])
    ask = d.pick([
        f"How much heat is needed to warm {m.text} of {name} from {t1} °C to {t2} °C? (c = {c.text})",
        f"Find the energy required to raise the temperature of {m.text} of {name} (specific heat capacity {c.text}) from {t1} °C to {t2} °C.",
    ])
    work = [f"Q = {m.n} × {c.n} × {t2 - t1} = {d.show_then(heat, 'J', unit)}"]
    return d.solve(ask, "Q = m·c·ΔT", work, "Q", heat, unit)


@template
def ideal_gas(d: Draft) -> Worked:
    n = d.draw("amount of gas", "n", 0.1, 2, "mol")
    tc = d.rng.randint(-20, 200)
    t = qty(tc + 273.15, "K")
    d.note(f"T = {tc} °C = {tc + 273.15:.2f} K")
    vol = d.draw("volume", "V", 2, 50, "L")
    r = d.give("gas constant", "R", 8.314, "J/(mol·K)", sf=4)
    p = n * r * t / vol
    gas = d.pick(["nitrogen", "helium", "oxygen", "argon", "air", "neon", "carbon dioxide"])
    q = d.pick([
        f"{n.text} of {gas} occupies {vol.text} at {tc} °C. Treating it as ideal, what is its pressure?",
        f"Find the pressure of {n.text} of {gas} held in {art(vol.text)} container at {tc} °C.",
    ])
    work = [f"P = {n.n} × {r.n} × {tc + 273.15:.2f} / {vol.n} = {d.show(p, 'Pa')} = {d.show(p, 'kPa')}"]
    return d.solve(q, "P·V = n·R·T", work, "P", p, "kPa")


@template
def hydrostatic_pressure(d: Draft) -> Worked:
    name, rho_v = d.pick(FLUIDS)
    h = d.draw("depth", "h", 0.5, 60, "m")
    rho = d.give(f"density of {name}", "ρ", rho_v, "kg/m³", sf=digits(rho_v))
    p0 = d.give("atmospheric pressure", "P0", 101.3, "kPa", sf=4, si_note=False)
    g = gravity(d)
    p = p0 + rho * g * h
    where = d.pick(["a diver", "a sensor", "a submerged camera", "the bottom of a tank"])
    q = d.pick([
        f"What is the absolute pressure on {where} at a depth of {h.text} in {name} (ρ = {rho.text}), with atmospheric pressure {p0.text}?",
        f"Find the total pressure at {h.text} below the surface of {name} of density {rho.text} if the air pressure is {p0.text}.",
    ])
    work = [f"ρgh = {rho.n} × {g.n} × {h.n} = {d.show(rho * g * h, 'Pa')}",
            f"P = {p0.text} + {d.show(rho * g * h, 'kPa')} = {d.show(p, 'kPa')}"]
    return d.solve(q, "P = P0 + ρ·g·h", work, "P", p, "kPa")


@template
def buoyancy(d: Draft) -> Worked:
    solid, rho_s = d.pick([("aluminium", 2700), ("steel", 7850), ("granite", 2750), ("brass", 8500),
                           ("concrete", 2400), ("glass", 2500)])
    name, rho_f = d.pick(FLUIDS)
    vol = d.draw("volume", "V", 50, 5000, "cm³")
    rs = d.give(f"density of {solid}", "ρ_s", rho_s, "kg/m³", sf=digits(rho_s))
    rf = d.give(f"density of {name}", "ρ_f", rho_f, "kg/m³", sf=digits(rho_f))
    g = gravity(d)
    app = (rs - rf) * vol * g
    q = d.pick([
        f"{art(vol.text, cap=True)} block of {solid} (ρ = {rs.text}) hangs fully submerged in {name} (ρ = {rf.text}) from a spring balance. What does the balance read?",
        f"Find the apparent weight of {art(solid)} object of volume {vol.text} (density {rs.text}) completely immersed in {name} of density {rf.text}.",
    ])
    work = [f"W_app = ({rs.n} − {rf.n}) × {vol.n} × {g.n} = {d.show(app, 'N')}"]
    return d.solve(q, "W_app = W − F_b = (ρ_s − ρ_f)·V·g", work, "W_app", app, "N")
