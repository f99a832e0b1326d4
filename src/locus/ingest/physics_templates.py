"""Problem templates for the physics generator (`physics.py`), in the language of `physics_dsl.py`.

Each template takes a `Draft` (a seeded rng plus bookkeeping), draws its given values with
`d.draw`/`d.give` (rounded to what is displayed), computes with dimensioned `Quantity` objects and
returns `d.solve(...)`, which checks the result's dimension against the answer unit. Intermediate
values are shown through `d.show`, which checks their dimensions too.
"""

from __future__ import annotations

import math

from locus.ingest.physics_dsl import Draft, Worked, art, asin, best_unit, cos, exp, log, q as qty, sin, sqrt

TEMPLATES: dict = {}


def template(fn):
    TEMPLATES[fn.__name__] = fn
    return fn


def digits(v: float) -> int:
    """Significant figures to show a tabulated constant exactly (at least 3): 1025 -> 4, 920 -> 3."""
    return max(3, len(f"{v:g}".replace(".", "").replace("-", "").strip("0")))


def gravity(d: Draft):
    return d.give("gravitational field strength", "g", 9.81, "m/s²")


VEHICLES = [  # name, top initial speed / (m/s), top acceleration / (m/s²)
    ("car", 15, 3), ("cyclist", 7, 1.2), ("train", 30, 1.0), ("motorbike", 15, 4), ("delivery van", 18, 2.5),
    ("bus", 14, 1.5), ("skateboarder", 4, 0.8), ("tram", 12, 1.2), ("sprinter", 3, 1.5), ("electric scooter", 6, 1.5),
]
OBJECTS = ["crate", "box", "sled", "wooden block", "trolley", "suitcase", "toolbox", "parcel"]
THROWN = ["ball", "stone", "tennis ball", "football", "javelin", "water balloon", "golf ball", "shot put"]
ROLLED = ["ball", "marble", "toy car", "steel ball bearing", "tennis ball", "can"]
PLANETS = [  # name, mass / kg, radius / km
    ("Earth", 5.97e24, 6370), ("Mars", 6.42e23, 3390), ("Venus", 4.87e24, 6050),
    ("the Moon", 7.35e22, 1740), ("Jupiter", 1.90e27, 69900), ("Mercury", 3.30e23, 2440),
]
SURFACE_G = [("Earth", 9.81), ("the Moon", 1.62), ("Mars", 3.71), ("Venus", 8.87)]
SPECIFIC_HEATS = [("water", 4190), ("aluminium", 897), ("copper", 385), ("iron", 449),
                  ("glass", 840), ("lead", 128), ("olive oil", 1970), ("granite", 790)]
FLUIDS = [("fresh water", 1000), ("seawater", 1025), ("olive oil", 920), ("glycerine", 1260)]
MEDIA = [("air", 1.00), ("water", 1.33), ("crown glass", 1.52), ("acrylic", 1.49),
         ("diamond", 2.42), ("ethanol", 1.36), ("flint glass", 1.62)]


# ------------------------------------------------------------------------------- kinematics


@template
def kin_final_velocity(d: Draft) -> Worked:
    who, umax, amax = d.pick(VEHICLES)
    u = d.draw("initial speed", "u", 0.1 * umax, umax, "m/s")
    a = d.draw("acceleration", "a", 0.2 * amax, amax, "m/s²")
    t = d.draw("time", "t", 2, 8, "s")
    v = u + a * t
    q = d.pick([
        f"{art(who, cap=True)} moving at {u.text} accelerates uniformly at {a.text} for {t.text}. What is its final speed?",
        f"Starting with a speed of {u.text}, {art(who)} speeds up at a constant {a.text}. Find its speed after {t.text}.",
        f"{art(who, cap=True)} has velocity {u.text} and a constant acceleration of {a.text}. Calculate its velocity {t.text} later.",
    ])
    return d.solve(q, "v = u + a·t", [f"v = {u.n} + {a.n} × {t.n} = {d.show(v, 'm/s')}"], "v", v, "m/s")


@template
def kin_displacement(d: Draft) -> Worked:
    who, umax, amax = d.pick(VEHICLES)
    u = d.draw("initial velocity", "u", 0.1 * umax, umax, "m/s")
    a = d.draw("acceleration", "a", 0.2 * amax, amax, "m/s²")
    t = d.draw("time", "t", 2, 8, "s")
    s = u * t + 0.5 * a * t**2
    q = d.pick([
        f"{art(who, cap=True)} starts at {u.text} and accelerates uniformly at {a.text}. How far does the {who} travel in {t.text}?",
        f"Find the displacement of {art(who)} that moves with initial velocity {u.text} and constant acceleration {a.text} for {t.text}.",
        f"With an initial speed of {u.text} and a steady acceleration of {a.text}, what distance does {art(who)} cover in {t.text}?",
    ])
    work = [f"s = {u.n} × {t.n} + ½ × {a.n} × {t.n}² = {d.show(s, 'm')}"]
    return d.solve(q, "s = u·t + ½·a·t²", work, "s", s, "m")


@template
def kin_stopping_distance(d: Draft) -> Worked:
    who = d.pick(["car", "lorry", "motorbike", "bus", "van", "taxi"])
    u = d.draw("initial speed", "u", 30, 130, "km/h")
    a = d.draw("deceleration", "a", 2.5, 8, "m/s²")
    s = u**2 / (2 * a)
    q = d.pick([
        f"{art(who, cap=True)} travelling at {u.text} brakes with a constant deceleration of {a.text}. What is its braking distance?",
        f"How far does {art(who)} travel while stopping from {u.text} if it decelerates uniformly at {a.text}?",
        f"The brakes of {art(who)} moving at {u.text} give a steady deceleration of {a.text}. Find the distance needed to stop.",
    ])
    work = [f"s = {u.n}² / (2 × {a.n}) = {d.show(s, 'm')}"]
    return d.solve(q, "v² = u² − 2·a·s with v = 0, so s = u²/(2a)", work, "s", s, "m")


@template
def projectile_range(d: Draft) -> Worked:
    what = d.pick(THROWN)
    v = d.draw("launch speed", "v", 5, 40, "m/s")
    th = d.give("launch angle", "θ", d.rng.randint(10, 80), "°", sf=2)
    g = gravity(d)
    r = v**2 * sin(2 * th) / g
    q = d.pick([
        f"{art(what, cap=True)} is launched from level ground at {v.text} at {th.text} above the horizontal. Ignoring air resistance, find its range.",
        f"Neglecting drag, how far away does {art(what)} land if it is thrown at {v.text} at an angle of {th.text} over flat ground?",
        f"{art(what, cap=True)} leaves the ground at {th.text} to the horizontal with speed {v.text}. What horizontal distance does it cover before landing at the same height?",
    ])
    work = [f"R = {v.n}² × sin({2 * round(th.si * 180 / math.pi)}°) / {g.n} = {d.show(r, 'm')}"]
    return d.solve(q, "R = v²·sin(2θ)/g", work, "R", r, "m")


@template
def projectile_horizontal(d: Draft) -> Worked:
    what = d.pick(ROLLED)
    place = d.pick(["a cliff", "a table", "a balcony", "a bridge", "a wall", "a rooftop"])
    h = d.draw("height", "h", 0.8, 60, "m")
    v = d.draw("horizontal speed", "v", 1, 25, "m/s")
    g = gravity(d)
    t = sqrt(2 * h / g)
    x = v * t
    q = d.pick([
        f"{art(what, cap=True)} rolls horizontally off {place} {h.text} high at {v.text}. How far from the base does it land? Ignore air resistance.",
        f"{art(what, cap=True)} is projected horizontally at {v.text} from the top of {place} of height {h.text}. Find the horizontal distance it travels before hitting the ground.",
    ])
    work = [f"t = √(2 × {h.n} / {g.n}) = {d.show(t, 's')}", f"x = {v.n} × {d.si(t)} = {d.show(x, 'm')}"]
    return d.solve(q, "h = ½·g·t², x = v·t", work, "x", x, "m")


# ------------------------------------------------------------------------- forces and energy


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


# ------------------------------------------------------------------- circular motion, gravity


@template
def centripetal_force(d: Draft) -> Worked:
    what, lo, hi, vmax = d.pick([("car", 900, 2000, 30), ("cyclist with bike", 60, 110, 12), ("motorbike", 180, 350, 30),
                                 ("go-kart", 120, 200, 20), ("bus", 8000, 18000, 20), ("racing car", 700, 800, 60)])
    m = d.draw("mass", "m", lo, hi, "kg")
    v = d.draw("speed", "v", 0.25 * vmax, vmax, "m/s")
    r = d.draw("radius", "r", 15, 250, "m")
    f = m * v**2 / r
    unit = best_unit(f, ["N", "kN"])
    q = d.pick([
        f"{art(m.text, cap=True)} {what} rounds a bend of radius {r.text} at {v.text}. What centripetal force is required?",
        f"Find the resultant inward force on {art(what)} of mass {m.text} moving at {v.text} around a circular track of radius {r.text}.",
    ])
    work = [f"F = {m.n} × {v.n}² / {r.n} = {d.show(f, unit)}"]
    return d.solve(q, "F = m·v²/r", work, "F", f, unit)


def _planet(d: Draft):
    name, mass, radius = d.pick(PLANETS)
    gc = d.give("gravitational constant", "G", 6.67e-11, "N·m²/kg²")
    big_m = d.give(f"mass of {name}", "M", mass, "kg")
    big_r = d.give(f"radius of {name}", "R", radius, "km", sf=3, si_note=False)
    h = d.give("altitude", "h", d.rng.uniform(0.03 * radius, 0.5 * radius), "km", si_note=False)
    return name, gc, big_m, big_r, h


@template
def orbit_speed(d: Draft) -> Worked:
    name, gc, big_m, big_r, h = _planet(d)
    r = big_r + h
    v = sqrt(gc * big_m / r)
    q = d.pick([
        f"A satellite orbits {name} (mass {big_m.text}, radius {big_r.text}) in a circular orbit at an altitude of {h.text}. Find its orbital speed.",
        f"What speed does a probe need for a circular orbit {h.text} above the surface of {name}? Take M = {big_m.text} and R = {big_r.text}.",
    ])
    work = [f"r = {d.show(r, 'm')}", f"v = √({gc.n} × {big_m.n} / {d.si(r)}) = {d.show(v, 'km/s')}"]
    return d.solve(q, "v = √(GM/r), r = R + h", work, "v", v, "km/s")


@template
def orbit_period(d: Draft) -> Worked:
    name, gc, big_m, big_r, h = _planet(d)
    r = big_r + h
    t = 2 * math.pi * sqrt(r**3 / (gc * big_m))
    q = d.pick([
        f"Find the period of a satellite in a circular orbit {h.text} above {name} (M = {big_m.text}, R = {big_r.text}).",
        f"How long does one orbit take for a spacecraft circling {name} at an altitude of {h.text}? Use M = {big_m.text} and R = {big_r.text}.",
    ])
    work = [f"r = {d.show(r, 'm')}",
            f"T = 2π √({d.si(r)}³ / ({gc.n} × {big_m.n})) = {d.show(t, 'min')}"]
    return d.solve(q, "T = 2π·√(r³/(GM)), r = R + h", work, "T", t, "min")


# ---------------------------------------------------------------------- springs, pendulums


@template
def hooke_extension(d: Draft) -> Worked:
    what = d.pick(["mass", "weight", "bag of sand", "bucket", "lab mass"])
    k = d.draw("spring constant", "k", 50, 2000, "N/m")
    m = d.draw("mass", "m", 0.1, 5, "kg")
    g = gravity(d)
    x = m * g / k
    q = d.pick([
        f"{art(what, cap=True)} of {m.text} hangs at rest from a spring with spring constant {k.text}. How far is the spring stretched?",
        f"A spring (k = {k.text}) supports {art(m.text)} {what}. Find the extension at equilibrium.",
    ])
    work = [f"x = {m.n} × {g.n} / {k.n} = {d.show(x, 'm')} = {d.show(x, 'cm')}"]
    return d.solve(q, "k·x = m·g (Hooke's law)", work, "x", x, "cm")


@template
def shm_mass_spring(d: Draft) -> Worked:
    m = d.draw("mass", "m", 0.05, 5, "kg")
    k = d.draw("spring constant", "k", 10, 1500, "N/m")
    t = 2 * math.pi * sqrt(m / k)
    q = d.pick([
        f"{art(m.text, cap=True)} mass on a spring of stiffness {k.text} oscillates in simple harmonic motion. What is the period?",
        f"Find the period of oscillation of a mass-spring system with m = {m.text} and k = {k.text}.",
        f"A glider of mass {m.text} is attached to a spring with k = {k.text} and set oscillating. How long is one oscillation?",
    ])
    work = [f"T = 2π √({m.n} / {k.n}) = {d.show(t, 's')}"]
    return d.solve(q, "T = 2π·√(m/k)", work, "T", t, "s")


@template
def pendulum_period(d: Draft) -> Worked:
    where, gv = d.pick(SURFACE_G)
    length = d.draw("length", "L", 0.1, 3, "m")
    g = d.give(f"g on {where}", "g", gv, "m/s²")
    t = 2 * math.pi * sqrt(length / g)
    q = d.pick([
        f"What is the period of a simple pendulum of length {length.text} on {where}, where g = {g.text}?",
        f"A simple pendulum {length.text} long swings with small amplitude on {where} (g = {g.text}). Find its period.",
    ])
    work = [f"T = 2π √({length.n} / {g.n}) = {d.show(t, 's')}"]
    return d.solve(q, "T = 2π·√(L/g)", work, "T", t, "s")


@template
def pendulum_length(d: Draft) -> Worked:
    where, gv = d.pick(SURFACE_G)
    t = d.draw("period", "T", 0.5, 4, "s")
    g = d.give(f"g on {where}", "g", gv, "m/s²")
    length = g * (t / (2 * math.pi)) ** 2
    unit = best_unit(length, ["cm", "m"])
    q = d.pick([
        f"How long must a simple pendulum be to have a period of {t.text} on {where} (g = {g.text})?",
        f"A clock pendulum should swing with a period of {t.text} on {where}, where g = {g.text}. What length is needed?",
    ])
    work = [f"L = {g.n} × ({t.n} / 2π)² = {d.show(length, 'm')}" + (f" = {d.show(length, unit)}" if unit != "m" else "")]
    return d.solve(q, "T = 2π·√(L/g), so L = g·(T/2π)²", work, "L", length, unit)


# --------------------------------------------------------------------------------- circuits


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
            f"t = {d.si(tau)} × ln({v0.n} / {v.n}) = {d.show(t, 's')}" + (f" = {d.show(t, unit)}" if unit != "s" else "")]
    return d.solve(q, "V = V0·e^(−t/RC), so t = RC·ln(V0/V)", work, "t", t, unit)


# ------------------------------------------------------------------------- waves and optics


@template
def wave_speed(d: Draft) -> Worked:
    medium, lo, hi, flo, fhi, fu = d.pick([
        ("Sound in air", 330, 350, 50, 8000, "Hz"), ("Sound in water", 1450, 1530, 100, 20000, "Hz"),
        ("A wave on a guitar string", 100, 450, 80, 1000, "Hz"), ("A water wave", 0.5, 3, 0.2, 2, "Hz"),
        ("Ultrasound in soft tissue", 1500, 1580, 1, 10, "MHz"),
    ])
    v = d.draw("wave speed", "v", lo, hi, "m/s")
    f = d.draw("frequency", "f", flo, fhi, fu)
    lam = v / f
    unit = best_unit(lam, ["mm", "cm", "m"])
    q = d.pick([
        f"{medium} travels at {v.text}. What is the wavelength of {art(f.text)} wave?",
        f"{medium} has speed {v.text} and frequency {f.text}. Calculate its wavelength.",
    ])
    return d.solve(q, "v = f·λ, so λ = v/f", [f"λ = {v.n} / {f.n} = {d.show(lam, 'm')}" + (f" = {d.show(lam, unit)}" if unit != "m" else "")], "λ", lam, unit)


@template
def doppler(d: Draft) -> Worked:
    src = d.pick(["ambulance siren", "police car siren", "train horn", "fire engine siren", "car horn"])
    f = d.draw("emitted frequency", "f", 300, 1500, "Hz")
    vs = d.draw("source speed", "v_s", 5, 45, "m/s")
    c = d.give("speed of sound", "v", 343, "m/s")
    toward = d.rng.random() < 0.5
    fo = f * c / (c - vs) if toward else f * c / (c + vs)
    way, sign = ("towards", "−") if toward else ("away from", "+")
    q = d.pick([
        f"{art(src, cap=True)} emitting {f.text} moves {way} a stationary listener at {vs.text}. What frequency is heard? Take the speed of sound as {c.text}.",
        f"{art(src, cap=True)} of frequency {f.text} travels at {vs.text} directly {way} an observer at rest. Find the observed frequency (speed of sound {c.text}).",
    ])
    work = [f"f' = {f.n} × {c.n} / ({c.n} {sign} {vs.n}) = {d.show(fo, 'Hz')}"]
    return d.solve(q, f"f' = f·v/(v {sign} v_s) (source moving {way} observer)", work, "f'", fo, "Hz")


@template
def thin_lens(d: Draft) -> Worked:
    f = d.draw("focal length", "f", 5, 50, "cm")
    do = d.give("object distance", "u", f.si * 100 * d.rng.uniform(1.2, 5), "cm")
    di = 1 / (1 / f - 1 / do)
    q = d.pick([
        f"An object is placed {do.text} from a converging lens of focal length {f.text}. Where is the image formed?",
        f"A converging lens has focal length {f.text}. Find the image distance for an object {do.text} from the lens.",
        f"A candle stands {do.text} in front of a convex lens with f = {f.text}. How far from the lens is the sharp image?",
    ])
    work = [f"1/v = 1/{f.n} − 1/{do.n} = {d.show(1 / di, 'm^-1')}", f"v = {d.show(di, 'm')} = {d.show(di, 'cm')} (positive: real image)"]
    return d.solve(q, "1/f = 1/u + 1/v", work, "v", di, "cm")


@template
def snell(d: Draft) -> Worked:
    (m1, n1v), (m2, n2v) = d.rng.sample(MEDIA, 2)
    n1 = d.give(f"refractive index of {m1}", "n1", n1v, "", sf=3)
    n2 = d.give(f"refractive index of {m2}", "n2", n2v, "", sf=3)
    limit = 80 if n1v <= n2v else math.degrees(math.asin(n2v / n1v)) - 3
    th1 = d.give("angle of incidence", "θ1", d.rng.uniform(10, limit), "°", sf=3)
    th2 = asin(n1 * sin(th1) / n2)
    q = d.pick([
        f"Light passes from {m1} (n = {n1.text}) into {m2} (n = {n2.text}) at an angle of incidence of {th1.text}. Find the angle of refraction.",
        f"A ray in {m1} (n = {n1.text}) meets a boundary with {m2} (n = {n2.text}) at {th1.text} to the normal. What is the refracted angle?",
    ])
    work = [f"sin θ2 = {n1.n} × sin {th1.n} / {n2.n} = {math.sin(th2.si):.4f}", f"θ2 = {d.show(th2, '°')}"]
    return d.solve(q, "n1·sinθ1 = n2·sinθ2", work, "θ2", th2, "°")


# ------------------------------------------------------------------ heat, gases and fluids


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
    work = [f"Q = {m.n} × {c.n} × {t2 - t1} = {d.show(heat, 'J')}" + (f" = {d.show(heat, unit)}" if unit != "J" else "")]
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
