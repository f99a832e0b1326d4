rule init_adapter:
    message:
        "Initial {wildcards.method} adapter, seed {wildcards.seed} (shared by its cells)"
    input:
        model=MODEL,
        code=code("init-adapter"),
    output:
        directory(INIT),
    params:
        tracked=tracked("init_adapter"),  # the params keys dvc.yaml tracks for it
    log:
        f"{LOGS}/init_adapter/{{method}}_seed={{seed}}.log",
    threads: model_threads("default")
    resources:
        **cluster_resources("load"),
    shell:
        "locus init-adapter {STAGE_ARGS} --method {wildcards.method} --model {input.model} --seed {wildcards.seed} "
        "--out {output} 2>&1 | tee {log}"


rule train:
    message:
        "Training {wildcards.domain} ({wildcards.method}), lr={wildcards.lr}, seed={wildcards.seed}"
    input:
        model=MODEL,
        w0=W0,
        train=f"{DATA}/train.jsonl",
        eval=f"{DATA}/eval.jsonl",
        init=INIT,
        before=pattern("eval_base"),  # the base model's eval loss on this domain (rule evaluate_base)
        code=code("train"),
    output:
        adapter=directory(f"{CELL}/adapter_final"),
        log=f"{CELL}/train_log.csv",
        metrics=f"{CELL}/metrics.json",
        # snapshots for learning trajectories (trajectory.smk), only when training.snapshot_every > 0
        **({"trajectory": directory(f"{CELL}/trajectory")} if PARAMS.training.snapshot_every else {}),
    params:
        tracked=tracked("train"),  # the params keys dvc.yaml tracks for it
        data=lambda w, input: os.path.dirname(input.train),
        out=lambda w, output: os.path.dirname(output.metrics),
    log:
        f"{LOGS}/train/{{domain}}_{{method}}_lr={{lr}}_seed={{seed}}.log",
    threads: model_threads("train")
    resources:
        **cluster_resources("train"),
    shell:
        "locus train {STAGE_ARGS} --method {wildcards.method} --model {input.model} --w0 {input.w0} --data {params.data} "
        "--init {input.init} --before {input.before} --lr {wildcards.lr} --seed {wildcards.seed} "
        "--out {params.out} 2>&1 | tee {log}"
