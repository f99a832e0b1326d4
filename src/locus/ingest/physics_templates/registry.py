"""The template registry, and what templates of several topics share."""

from __future__ import annotations

from locus.ingest.physics_dsl import Draft

BY_TOPIC: dict[str, dict] = {}  # topic module name -> {template name: template}, in definition order


def template(fn):
    """Register a template under its topic module and its function's name."""
    BY_TOPIC.setdefault(fn.__module__, {})[fn.__name__] = fn
    return fn


def gravity(d: Draft):
    return d.give("gravitational field strength", "g", 9.81, "m/s²")
