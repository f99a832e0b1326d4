rule prepare_model:
    message:
        "Preparing base model {PARAMS.model.source} -> {output}"
    input:
        code("layout", "modeling", "stages/prepare_model"),
    output:
        directory(MODEL),
    log:
        f"{LOGS}/prepare_model.log",
    shell:
        "locus prepare-model {STAGE_ARGS} --out {output} 2>&1 | tee {log}"


rule prepare_data:
    message:
        "Preparing dataset {wildcards.domain}"
    input:
        raw=raw_dataset,
        code=code("records", "stages/prepare_data"),
    output:
        train=f"{RESULTS}/data/{{domain}}/train.jsonl",
        eval=f"{RESULTS}/data/{{domain}}/eval.jsonl",
        stats=f"{RESULTS}/data/{{domain}}/stats.json",
    log:
        f"{LOGS}/prepare_data/{{domain}}.log",
    shell:
        "locus prepare-data {STAGE_ARGS} --domain {wildcards.domain} "
        "--out $(dirname {output.train}) 2>&1 | tee {log}"
