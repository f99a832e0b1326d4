"""Kinematics and projectiles. Physics problem templates (see the package docstring)."""

from __future__ import annotations

import math

from locus.ingest.physics_dsl import Draft, Worked, art
from locus.ingest.physics_quantities import sin, sqrt
from locus.ingest.physics_templates.registry import gravity, template

VEHICLES = [  # name, top initial speed / (m/s), top acceleration / (m/s²)
    ("car", 15, 3), ("cyclist", 7, 1.2), ("train", 30, 1.0), ("motorbike", 15, 4), ("delivery van", 18, 2.5),
    ("bus", 14, 1.5), ("skateboarder", 4, 0.8), ("tram", 12, 1.2), ("sprinter", 3, 1.5), ("electric scooter", 6, 1.5),
]
THROWN = ["ball", "stone", "tennis ball", "football", "javelin", "water balloon", "golf ball", "shot put"]
ROLLED = ["ball", "marble", "toy car", "steel ball bearing", "tennis ball", "can"]


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
