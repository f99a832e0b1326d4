"""Springs and pendulums. Physics problem templates (see the package docstring)."""

from __future__ import annotations

import math

from locus.ingest.physics_dsl import Draft, Worked, art
from locus.ingest.physics_quantities import best_unit, sqrt
from locus.ingest.physics_templates.registry import gravity, template

SURFACE_G = [("Earth", 9.81), ("the Moon", 1.62), ("Mars", 3.71), ("Venus", 8.87)]


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
    work = [f"L = {g.n} × ({t.n} / 2π)² = {d.show_then(length, 'm', unit)}"]
    return d.solve(q, "T = 2π·√(L/g), so L = g·(T/2π)²", work, "L", length, unit)
