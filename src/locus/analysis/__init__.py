"""Reading a grid's cells and computing what the report shows: held-out evaluation, trajectories, the full-FT comparison, targeted-layer validation."""
