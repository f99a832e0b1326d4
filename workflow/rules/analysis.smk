rule delta:
    message:
        "Δ statistics for {wildcards.domain} ({wildcards.method}), lr={wildcards.lr}, seed={wildcards.seed}"
    input:
        init=INIT,
        final=f"{CELL}/adapter_final",
        metrics=f"{CELL}/metrics.json",
        code=code("delta"),
    output:
        f"{CELL}/delta.parquet",
    log:
        f"{LOGS}/delta/{{domain}}_{{method}}_lr={{lr}}_seed={{seed}}.log",
    shell:
        "locus delta {STAGE_ARGS} --method {wildcards.method} --init {input.init} --final {input.final} --metrics {input.metrics} "
        "--out {output} 2>&1 | tee {log}"


rule effective:
    message:
        "Effective update ΔW for {wildcards.domain} ({wildcards.method}), lr={wildcards.lr}, seed={wildcards.seed}"
    input:
        model=MODEL,
        w0=W0,
        init=INIT,
        final=f"{CELL}/adapter_final",
        code=code("effective"),
    output:
        f"{CELL}/effective.parquet",
    params:
        tracked=tracked("effective"),  # the params keys dvc.yaml tracks for it
    log:
        f"{LOGS}/effective/{{domain}}_{{method}}_lr={{lr}}_seed={{seed}}.log",
    threads: model_threads("default")
    resources:
        **cluster_resources("default"),
    shell:
        "locus effective {STAGE_ARGS} --method {wildcards.method} --model {input.model} --w0 {input.w0} --init {input.init} --final {input.final} "
        "--out {output} 2>&1 | tee {log}"


rule represent:
    message:
        "Representation change for {wildcards.domain} ({wildcards.method}), lr={wildcards.lr}, seed={wildcards.seed}"
    input:
        model=MODEL,
        w0=W0,
        eval=f"{DATA}/eval.jsonl",
        adapter=f"{CELL}/adapter_final",
        code=code("represent"),
    output:
        f"{CELL}/representation.parquet",
    params:
        tracked=tracked("represent"),  # the params keys dvc.yaml tracks for it
        data=lambda w, input: os.path.dirname(input.eval),
    log:
        f"{LOGS}/represent/{{domain}}_{{method}}_lr={{lr}}_seed={{seed}}.log",
    threads: model_threads("train")  # runs the model, like evaluate: a GPU on a cluster when train jobs get one
    resources:
        **cluster_resources("train"),
    shell:
        "locus represent {STAGE_ARGS} --method {wildcards.method} --model {input.model} --w0 {input.w0} --adapter {input.adapter} "
        "--data {params.data} "
        "--out {output} 2>&1 | tee {log}"


rule aggregate:
    message:
        "Aggregating the grid by layer"
    input:
        deltas=every_cell("{cell}/delta.parquet"),
        effective=every_cell("{cell}/effective.parquet"),
        representation=every_cell("{cell}/representation.parquet"),
        metrics=every_cell("{cell}/metrics.json"),
        adapters=every_cell("{cell}/adapter_final"),
        evaluation=EVALUATION_INPUTS,  # optional experiments: empty lists when off
        full_ft=FULL_FT_INPUTS,
        # the methods section: every method's cells ([] when `methods` holds the main method alone)
        methods=every_method_cell("{cell}/effective.parquet")
        + every_method_cell("{cell}/representation.parquet")
        + every_method_cell("{cell}/metrics.json"),
        code=code("aggregate"),
    output:
        **EXPERIMENT_TABLES,
        layers=f"{RESULTS}/layers.parquet",
        modules=f"{RESULTS}/modules.parquet",
        profile=f"{RESULTS}/layer_profile.csv",
        summary=f"{RESULTS}/summary.json",
        similarity=f"{RESULTS}/similarity.parquet",
    params:
        tracked=tracked("aggregate"),  # the params keys dvc.yaml tracks for it
    log:
        f"{LOGS}/aggregate.log",
    shell:
        "locus aggregate {STAGE_ARGS} --out-dir {RESULTS} 2>&1 | tee {log}"


rule report:
    message:
        "Rendering {output.html}"
    input:
        layers=f"{RESULTS}/layers.parquet",
        modules=f"{RESULTS}/modules.parquet",
        similarity=f"{RESULTS}/similarity.parquet",
        metrics=every_cell("{cell}/metrics.json"),
        stats=expand(f"{DATA}/stats.json", domain=PARAMS.grid.domains),
        experiments=list(EXPERIMENT_TABLES.values()),
        trajectories=TRAJECTORY_INPUTS,  # [] unless training.snapshot_every > 0 (trajectory.smk)
        code=code("report"),
    output:
        html=report(REPORT, caption="../report/report.rst", category="Report"),
        figures=report(
            directory(f"{RESULTS}/figures"),
            patterns=["{name}.svg"],
            caption="../report/figure.rst",
            category="Figures",
        ),
    params:
        tracked=tracked("report"),  # the params keys dvc.yaml tracks for it
    log:
        f"{LOGS}/report.log",
    shell:
        "locus report {STAGE_ARGS} --tables {RESULTS} --out {output.html} --figures {output.figures} 2>&1 | tee {log}"
