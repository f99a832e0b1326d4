"""Problem templates for the physics generator (`physics.py`), in the language of `physics_dsl.py`.

Each template takes a `Draft` (a seeded rng plus bookkeeping), draws its given values with
`d.draw`/`d.give` (rounded to what is displayed), computes with dimensioned `Quantity` objects and
returns `d.solve(...)`, which checks the result's dimension against the answer unit. Intermediate
values are shown through `d.show`, which checks their dimensions too.

One module per topic. `TEMPLATES` lists them topic by topic in TOPICS' order, each topic's in the
order they are defined: the order the generator draws them round-robin, so it is part of what
`data/raw/physics.jsonl` is.
"""

from locus.ingest.physics_templates import circuits, circular, forces, kinematics, matter, oscillations, waves
from locus.ingest.physics_templates.registry import BY_TOPIC

TOPICS = (kinematics, forces, circular, oscillations, circuits, waves, matter)
TEMPLATES: dict = {name: fn for topic in TOPICS for name, fn in BY_TOPIC[topic.__name__].items()}
