"""DC circuits and capacitors. Physics problem templates (see the package docstring)."""

from __future__ import annotations

from locus.ingest.physics_dsl import Draft, Worked, art
from locus.ingest.physics_quantities import best_unit, exp, log
from locus.ingest.physics_templates.registry import template


@template
def circuit_series(d: Draft) -> Worked:
    v = d.draw("supply voltage", "V", 1.5, 24, "V")
    rs = [d.draw(f"resistor {i}", f"R{i}", 10, 1000, "Ω") for i in (1, 2, 3)]
    total = rs[0] + rs[1] + rs[2]
    i = v / total
    unit = best_unit(i, ["mA", "A"])
    names = ", ".join(r.text for r in rs)
    q = d.pick([
        f"Resistors of {names} are connected in series across {art(v.text)} supply. What current flows?",
        f"{art(v.text, cap=True)} battery drives current through three series resistors ({names}). Find the current.",
    ])
    work = [f"R = {' + '.join(r.n for r in rs)} = {d.show(total, 'Ω')}", f"I = {v.n} / {d.si(total)} = {d.show(i, unit)}"]
    return d.solve(q, "I = V / (R1 + R2 + R3)", work, "I", i, unit)


@template
def circuit_series_parallel(d: Draft) -> Worked:
    v = d.draw("supply voltage", "V", 3, 24, "V")
    r1 = d.draw("series resistor", "R1", 10, 500, "Ω")
    r2 = d.draw("parallel resistor", "R2", 20, 1000, "Ω")
    r3 = d.draw("parallel resistor", "R3", 20, 1000, "Ω")
    rp = r2 * r3 / (r2 + r3)
    i = v / (r1 + rp)
    unit = best_unit(i, ["mA", "A"])
    q = d.pick([
        f"{art(r1.text, cap=True)} resistor is in series with a parallel pair of {r2.text} and {r3.text}, all across {art(v.text)} supply. Find the current drawn from the supply.",
        f"{art(v.text, cap=True)} source feeds {r1.text} in series with the parallel combination of {r2.text} and {r3.text}. What is the total current?",
    ])
    work = [f"R∥ = {r2.n} × {r3.n} / ({r2.n} + {r3.n}) = {d.show(rp, 'Ω')}",
            f"I = {v.n} / ({r1.n} + {d.si(rp)}) = {d.show(i, unit)}"]
    return d.solve(q, "R∥ = R2·R3/(R2 + R3), I = V/(R1 + R∥)", work, "I", i, unit)


@template
def electric_power(d: Draft) -> Worked:
    what, ilo, ihi, rlo, rhi = d.pick([("heater", 3, 10, 20, 60), ("kettle element", 8, 13, 17, 30),
                                       ("resistor", 0.01, 0.2, 10, 1000), ("toaster element", 3, 5, 40, 80),
                                       ("soldering iron", 0.1, 0.3, 500, 2000), ("car headlamp filament", 3, 6, 1.5, 4)])
    i = d.draw("current", "I", ilo, ihi, "A")
    r = d.draw("resistance", "R", rlo, rhi, "Ω")
    p = i**2 * r
    unit = best_unit(p, ["mW", "W", "kW"])
    q = d.pick([
        f"A current of {i.text} flows through {art(what)} of resistance {r.text}. What power does it dissipate?",
        f"Find the power converted by {art(r.text)} {what} carrying {i.text}.",
    ])
    return d.solve(q, "P = I²·R", [f"P = {i.n}² × {r.n} = {d.show(p, unit)}"], "P", p, unit)


@template
def capacitor_energy(d: Draft) -> Worked:
    c = d.draw("capacitance", "C", 1, 2000, "μF")
    v = d.draw("voltage", "V", 3, 400, "V")
    e = 0.5 * c * v**2
    unit = best_unit(e, ["mJ", "J"])
    q = d.pick([
        f"{art(c.text, cap=True)} capacitor is charged to {v.text}. How much energy does it store?",
        f"Find the energy stored in a capacitor of capacitance {c.text} with a potential difference of {v.text} across it.",
        f"A camera flash uses {art(c.text)} capacitor charged to {v.text}. What energy is stored?",
    ])
    return d.solve(q, "E = ½·C·V²", [f"E = ½ × {c.n} × {v.n}² = {d.show(e, unit)}"], "E", e, unit)


@template
def rc_charging(d: Draft) -> Worked:
    r = d.give("resistance", "R", d.rng.uniform(1, 100), "kΩ", si_note=False)
    c = d.give("capacitance", "C", d.rng.uniform(10, 1000), "μF", si_note=False)
    v0 = d.draw("supply voltage", "V0", 3, 24, "V")
    tau = r * c
    tu = "s" if tau.si >= 1 else "ms"
    t = d.give("time", "t", tau.si / (1e-3 if tu == "ms" else 1) * d.rng.uniform(0.2, 3), tu)
    v = v0 * (1 - exp(-(t / tau)))
    q = d.pick([
        f"An uncharged {c.text} capacitor is charged through {art(r.text)} resistor from {art(v0.text)} supply. What is the capacitor voltage after {t.text}?",
        f"{art(v0.text, cap=True)} battery charges an initially empty {c.text} capacitor via {r.text}. Find the voltage across the capacitor {t.text} after the switch closes.",
    ])
    work = [f"τ = RC = {r.text} × {c.text} = {d.show(tau, 's')}",
            f"V = {v0.n} × (1 − e^(−{t.n} / {d.si(tau)})) = {d.show(v, 'V')}"]
    return d.solve(q, "V = V0(1 − e^(−t/RC))", work, "V", v, "V")


@template
def rc_discharge_time(d: Draft) -> Worked:
    r = d.give("resistance", "R", d.rng.uniform(1, 100), "kΩ", si_note=False)
    c = d.give("capacitance", "C", d.rng.uniform(10, 1000), "μF", si_note=False)
    v0 = d.draw("initial voltage", "V0", 5, 50, "V")
    v = d.give("final voltage", "V", v0.si * d.rng.uniform(0.05, 0.8), "V")
    tau = r * c
    t = tau * log(v0 / v)
    unit = best_unit(t, ["ms", "s"])
    q = d.pick([
        f"{art(c.text, cap=True)} capacitor charged to {v0.text} discharges through {art(r.text)} resistor. How long until its voltage falls to {v.text}?",
        f"Find the time for a capacitor (C = {c.text}) discharging through {r.text} to drop from {v0.text} to {v.text}.",
    ])
    work = [f"τ = RC = {r.text} × {c.text} = {d.show(tau, 's')}",
            f"t = {d.si(tau)} × ln({v0.n} / {v.n}) = {d.show_then(t, 's', unit)}"]
    return d.solve(q, "V = V0·e^(−t/RC), so t = RC·ln(V0/V)", work, "t", t, unit)
