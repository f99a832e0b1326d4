# Learning trajectories (docs/experiments.md: "Learning trajectories"). Active only when params
# training.snapshot_every > 0: the train rule then also outputs CELL/trajectory/ (see train.smk) and
# this rule analyses the cells of trajectory.domains. Off, it defines no rule and
# TRAJECTORY_INPUTS is [], so every command and output is unchanged.

TRAJECTORY_ON = PARAMS.training.snapshot_every > 0
# What the report reads when on: each analysed cell's table.
TRAJECTORY_INPUTS = [str(layout.cell_dir(PARAMS, *c) / "trajectory.parquet") for c in layout.trajectory_cells(PARAMS)]

if TRAJECTORY_ON:

    rule trajectory:
        message:
            "Learning trajectory of {wildcards.domain}, lr={wildcards.lr}, seed={wildcards.seed}"
        input:
            model=MODEL,
            w0=W0,
            init=INIT,
            final=f"{CELL}/adapter_final",
            snapshots=f"{CELL}/trajectory",
            code=code("trajectory"),
        output:
            f"{CELL}/trajectory.parquet",
        params:
            tracked=tracked("trajectory"),  # the params keys dvc.yaml tracks for it
        log:
            f"{LOGS}/trajectory/{{domain}}_{{method}}_lr={{lr}}_seed={{seed}}.log",
        threads: model_threads("default")
        resources:
            **cluster_resources("default"),
        shell:
            "locus trajectory {STAGE_ARGS} --method {wildcards.method} --model {input.model} --w0 {input.w0} --init {input.init} "
            "--final {input.final} --snapshots {input.snapshots} --out {output} 2>&1 | tee {log}"
