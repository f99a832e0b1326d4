"""Cluster tests: a real single-node SLURM cluster on localhost (see slurm_cluster.py)."""
