"""The cluster tests' marker (pyproject.toml registers only `integration`)."""


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "cluster: brings up a single-node SLURM cluster on localhost (root; slow)"
    )
