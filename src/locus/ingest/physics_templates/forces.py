"""Forces, friction, work, energy, power and momentum. Physics problem templates (see the package docstring)."""

from __future__ import annotations

from locus.ingest.physics_dsl import Draft, Worked, art
from locus.ingest.physics_quantities import best_unit, cos, sin, sqrt
from locus.ingest.physics_templates.registry import gravity, template

OBJECTS = ["crate", "box", "sled", "wooden block", "trolley", "suitcase", "toolbox", "parcel"]


@template
def newton_friction(d: Draft) -> Worked:
    what = d.pick(OBJECTS)
    m = d.draw("mass", "m", 1, 40, "kg")
    mu = d.give("coefficient of kinetic friction", "μ", d.uniform(0.1, 0.6, 2), "", sf=2)
    g = gravity(d)
    f = d.give("applied force", "F", mu.si * m.si * 9.81 * d.rng.uniform(1.2, 2.5), "N")
    a = (f - mu * m * g) / m
    q = d.pick([
        f"{art(m.text, cap=True)} {what} is pulled across a horizontal floor by {art(f.text)} horizontal force. The coefficient of kinetic friction is {mu.text}. Find its acceleration.",
        f"A horizontal force of {f.text} pushes {art(what)} of mass {m.text} along level ground (μk = {mu.text}). What is the acceleration?",
        f"Calculate the acceleration of {art(m.text)} {what} dragged horizontally with {art(f.text)} force if the kinetic friction coefficient is {mu.text}.",
    ])
    fr = mu * m * g
    work = [f"friction = {mu.n} × {m.n} × {g.n} = {d.show(fr, 'N')}",
            f"a = ({f.n} − {d.si(fr)}) / {m.n} = {d.show(a, 'm/s²')}"]
    return d.solve(q, "F − μ·m·g = m·a", work, "a", a, "m/s²")


@template
def incline_friction(d: Draft) -> Worked:
    what = d.pick(OBJECTS)
    m = d.draw("mass", "m", 0.5, 30, "kg")
    th = d.give("incline angle", "θ", d.rng.randint(20, 55), "°", sf=2)
    mu = d.give("coefficient of kinetic friction", "μ", d.uniform(0.05, 0.35, 2), "", sf=2)
    g = gravity(d)
    a = g * (sin(th) - mu * cos(th))
    q = d.pick([
        f"{art(m.text, cap=True)} {what} slides down a ramp inclined at {th.text} with μk = {mu.text}. What is its acceleration down the slope?",
        f"Find the acceleration of {art(what)} (mass {m.text}) sliding down {art(th.text)} incline if the coefficient of kinetic friction is {mu.text}.",
        f"{art(what, cap=True)} of mass {m.text} is released on a slope of {th.text}; the kinetic friction coefficient is {mu.text}. Calculate its acceleration.",
    ])
    work = [f"a = {g.n} × (sin {th.n} − {mu.n} × cos {th.n}) = {d.show(a, 'm/s²')} (m cancels)"]
    return d.solve(q, "m·a = m·g·sinθ − μ·m·g·cosθ, so a = g(sinθ − μ·cosθ)", work, "a", a, "m/s²")


@template
def work_energy(d: Draft) -> Worked:
    what = d.pick(OBJECTS)
    m = d.draw("mass", "m", 1, 25, "kg")
    f = d.draw("force", "F", 5, 80, "N")
    th = d.give("angle of force above horizontal", "θ", d.rng.randint(0, 45), "°", sf=2)
    s = d.draw("distance", "s", 1, 20, "m")
    w = f * s * cos(th)
    v = sqrt(2 * w / m)
    q = d.pick([
        f"{art(m.text, cap=True)} {what} at rest on a frictionless floor is pulled {s.text} by {art(f.text)} force at {th.text} above the horizontal. What is its final speed?",
        f"A force of {f.text} directed {th.text} above the horizontal drags {art(what)} of mass {m.text}, initially at rest, {s.text} across frictionless ice. Find its speed.",
    ])
    work = [f"W = {f.n} × {s.n} × cos {th.n} = {d.show(w, 'J')}",
            f"v = √(2 × {d.si(w)} / {m.n}) = {d.show(v, 'm/s')}"]
    return d.solve(q, "W = F·s·cosθ = ½·m·v²", work, "v", v, "m/s")


@template
def energy_conservation(d: Draft) -> Worked:
    what = d.pick(["skier", "roller-coaster car", "sled", "skateboarder", "cart", "bobsleigh"])
    u = d.draw("initial speed", "u", 0, 10, "m/s")
    h = d.draw("height drop", "h", 1, 40, "m")
    g = gravity(d)
    v = sqrt(u**2 + 2 * g * h)
    q = d.pick([
        f"{art(what, cap=True)} moving at {u.text} descends a frictionless track through a vertical drop of {h.text}. What is its speed at the bottom?",
        f"Ignoring friction, find the speed of {art(what)} after it drops {h.text} in height, given that it started at {u.text}.",
    ])
    work = [f"v = √({u.n}² + 2 × {g.n} × {h.n}) = {d.show(v, 'm/s')}"]
    return d.solve(q, "½·m·v² = ½·m·u² + m·g·h, so v = √(u² + 2gh)", work, "v", v, "m/s")


@template
def power_lift(d: Draft) -> Worked:
    what = d.pick(["crane", "lift motor", "winch", "hoist", "elevator motor"])
    load = d.pick(["pallet of bricks", "steel beam", "load", "container", "piano"])
    m = d.draw("mass", "m", 50, 2000, "kg")
    h = d.draw("height", "h", 2, 40, "m")
    t = d.draw("time", "t", 5, 60, "s")
    g = gravity(d)
    p = m * g * h / t
    unit = best_unit(p, ["W", "kW"])
    q = d.pick([
        f"{art(what, cap=True)} raises {art(m.text)} {load} through {h.text} at constant speed in {t.text}. What is its useful power output?",
        f"Find the average power {art(what)} needs to lift {art(load)} of mass {m.text} by {h.text} in {t.text} at steady speed.",
    ])
    work = [f"P = {m.n} × {g.n} × {h.n} / {t.n} = {d.show(p, unit)}"]
    return d.solve(q, "P = W/t = m·g·h/t", work, "P", p, unit)


# ------------------------------------------------------------------------------- momentum


@template
def momentum_inelastic(d: Draft) -> Worked:
    what, lo, hi, vmax = d.pick([("railway wagons", 12000, 40000, 4), ("lab trolleys", 0.4, 3, 2),
                                 ("dodgem cars", 150, 300, 3), ("ice skaters", 40, 95, 6),
                                 ("air-track gliders", 0.1, 1, 1.5)])
    m1 = d.draw("mass of first", "m1", lo, hi, "kg")
    u1 = d.draw("speed of first", "u1", 0.3 * vmax, vmax, "m/s")
    m2 = d.draw("mass of second", "m2", lo, hi, "kg")
    u2 = d.give("speed of second", "u2", u1.si * d.rng.uniform(0.1, 0.8), "m/s")
    v = (m1 * u1 + m2 * u2) / (m1 + m2)
    q = d.pick([
        f"Two {what} move in the same direction: {m1.text} at {u1.text} and {m2.text} at {u2.text}. They collide and stick together. Find their common speed.",
        f"Two {what} collide and couple: {art(m1.text)} one at {u1.text} catches {art(m2.text)} one moving the same way at {u2.text}. Find their common speed.",
    ])
    work = [f"v = ({m1.n} × {u1.n} + {m2.n} × {u2.n}) / ({m1.n} + {m2.n}) = {d.show(v, 'm/s')}"]
    return d.solve(q, "m1u1 + m2u2 = (m1 + m2)v", work, "v", v, "m/s")


@template
def elastic_collision(d: Draft) -> Worked:
    what = d.pick(["ball", "puck", "glider", "steel sphere", "billiard ball"])
    m1 = d.draw("mass of moving body", "m1", 0.1, 5, "kg")
    u1 = d.draw("initial speed", "u1", 1, 10, "m/s")
    m2 = d.draw("mass of stationary body", "m2", 0.1, 5, "kg")
    v2 = 2 * m1 * u1 / (m1 + m2)
    q = d.pick([
        f"{art(m1.text, cap=True)} {what} moving at {u1.text} hits a stationary {m2.text} {what} head-on in a perfectly elastic collision. What is the speed of the second {what} afterwards?",
        f"In a one-dimensional elastic collision, {art(what)} of mass {m1.text} travelling at {u1.text} strikes an identical-looking {what} of mass {m2.text} at rest. Find the struck {what}'s velocity.",
    ])
    work = [f"v2 = 2 × {m1.n} × {u1.n} / ({m1.n} + {m2.n}) = {d.show(v2, 'm/s')}"]
    return d.solve(q, "momentum and kinetic energy conserved: v2 = 2m1u1/(m1 + m2)", work, "v2", v2, "m/s")


@template
def impulse(d: Draft) -> Worked:
    what, mass = d.pick([("tennis ball", 57), ("football", 430), ("squash ball", 24), ("cricket ball", 160),
                         ("basketball", 620), ("hockey puck", 170), ("rubber ball", 100)])
    m = d.draw("mass", "m", 0.0009 * mass, 0.0011 * mass, "kg")
    u = d.draw("speed before", "u", 3, 30, "m/s")
    v = d.give("speed after (opposite direction)", "v", u.si * d.rng.uniform(0.3, 0.95), "m/s")
    dt = d.draw("contact time", "Δt", 2, 60, "ms")
    f = m * (u + v) / dt
    unit = best_unit(f, ["N", "kN"])
    q = d.pick([
        f"{art(m.text, cap=True)} {what} hits a wall at {u.text} and rebounds at {v.text}. The contact lasts {dt.text}. Find the average force on the {what}.",
        f"What average force acts on {art(what)} of mass {m.text} that strikes a wall at {u.text} and bounces straight back at {v.text} after {dt.text} of contact?",
    ])
    work = [f"Δp = {m.n} × ({u.n} + {v.n}) = {d.show(m * (u + v), 'kg·m/s')}",
            f"F = {d.si(m * (u + v))} / {dt.n} = {d.show(f, unit)}"]
    return d.solve(q, "F·Δt = Δp = m(v − (−u))", work, "F", f, unit)
