"""Waves and optics. Physics problem templates (see the package docstring)."""

from __future__ import annotations

import math

from locus.ingest.physics_dsl import Draft, Worked, art
from locus.ingest.physics_quantities import asin, best_unit, sin
from locus.ingest.physics_templates.registry import template

MEDIA = [("air", 1.00), ("water", 1.33), ("crown glass", 1.52), ("acrylic", 1.49),
         ("diamond", 2.42), ("ethanol", 1.36), ("flint glass", 1.62)]


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
    return d.solve(q, "v = f·λ, so λ = v/f", [f"λ = {v.n} / {f.n} = {d.show_then(lam, 'm', unit)}"], "λ", lam, unit)


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
