"""Circular motion and gravitation. Physics problem templates (see the package docstring)."""

from __future__ import annotations

import math

from locus.ingest.physics_dsl import Draft, Worked, art
from locus.ingest.physics_quantities import best_unit, sqrt
from locus.ingest.physics_templates.registry import template

PLANETS = [  # name, mass / kg, radius / km
    ("Earth", 5.97e24, 6370), ("Mars", 6.42e23, 3390), ("Venus", 4.87e24, 6050),
    ("the Moon", 7.35e22, 1740), ("Jupiter", 1.90e27, 69900), ("Mercury", 3.30e23, 2440),
]


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
