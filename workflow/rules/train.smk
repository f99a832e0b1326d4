rule init_adapter:
    message:
        "Initial LoRA adapter, seed {wildcards.seed} ({wildcards.domain}, lr={wildcards.lr})"
    input:
        model=MODEL,
        code=code("modeling", "stages/init_adapter"),
    output:
        directory(f"{CELL}/adapter_init"),
    log:
        f"{LOGS}/init_adapter/{{domain}}_lr={{lr}}_seed={{seed}}.log",
    shell:
        "locus init-adapter {STAGE_ARGS} --model {input.model} --seed {wildcards.seed} "
        "--out {output} 2>&1 | tee {log}"


rule train:
    message:
        "Training {wildcards.domain}, lr={wildcards.lr}, seed={wildcards.seed}"
    input:
        model=MODEL,
        train=f"{RESULTS}/data/{{domain}}/train.jsonl",
        eval=f"{RESULTS}/data/{{domain}}/eval.jsonl",
        init=f"{CELL}/adapter_init",
        code=code("modeling", "records", "sft_data", "stages/train"),
    output:
        adapter=directory(f"{CELL}/adapter_final"),
        log=f"{CELL}/train_log.jsonl",
        metrics=f"{CELL}/metrics.json",
    log:
        f"{LOGS}/train/{{domain}}_lr={{lr}}_seed={{seed}}.log",
    shell:
        "locus train {STAGE_ARGS} --model {input.model} --data $(dirname {input.train}) "
        "--init {input.init} --lr {wildcards.lr} --seed {wildcards.seed} "
        "--out $(dirname {output.metrics}) 2>&1 | tee {log}"
