"""One module per pipeline stage; each exposes `add_arguments(parser)` and `run(args, params)`."""
