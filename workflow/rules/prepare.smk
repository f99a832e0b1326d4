rule prepare_model:
    message:
        "Preparing base model {PARAMS.model.source} -> {output}"
    input:
        code("prepare-model"),
    output:
        directory(MODEL),
    params:
        tracked=tracked("prepare_model"),  # the params keys dvc.yaml tracks for it
    log:
        f"{LOGS}/prepare_model.log",
    threads: model_threads("default")
    resources:
        **cluster_resources("load"),
    shell:
        "locus prepare-model {STAGE_ARGS} --out {output} 2>&1 | tee {log}"


rule quantize_base:
    message:
        "Quantizing the base once: W₀ as training computes with it -> {output}"
    input:
        model=MODEL,
        code=code("quantize-base"),
    output:
        W0,
    params:
        tracked=tracked("quantize_base"),  # the params keys dvc.yaml tracks for it
    log:
        f"{LOGS}/quantize_base.log",
    threads: model_threads("train")  # runs on the training device
    resources:
        **cluster_resources("train"),
    shell:
        "locus quantize-base {STAGE_ARGS} --model {input.model} --out {output} 2>&1 | tee {log}"


rule prepare_data:
    message:
        "Preparing dataset {wildcards.domain}"
    input:
        raw=raw_dataset,
        code=code("prepare-data"),
    output:
        train=f"{DATA}/train.jsonl",
        eval=f"{DATA}/eval.jsonl",
        stats=f"{DATA}/stats.json",
    params:
        tracked=tracked("prepare_data"),  # the params keys dvc.yaml tracks for it
        out=lambda w, output: os.path.dirname(output.train),
    log:
        f"{LOGS}/prepare_data/{{domain}}.log",
    resources:
        **cluster_resources("default"),
    shell:
        "locus prepare-data {STAGE_ARGS} --domain {wildcards.domain} "
        "--out {params.out} 2>&1 | tee {log}"
