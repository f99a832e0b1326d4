# The base model once per grid domain: the model before training (the initial adapter has lora_B = 0),
# so its score is every cell's eval loss before training. Held-out cross-domain evaluation (params
# evaluation.domains; [] = off): every cell trained on an evaluation domain is scored on each
# evaluation domain's eval split.


def eval_splits(wildcards=None):
    return expand(f"{DATA}/eval.jsonl", domain=PARAMS.evaluation.domains)


rule evaluate_base:
    message:
        "Base model on the {wildcards.domain} eval split"
    input:
        model=MODEL,
        w0=W0,
        eval=f"{DATA}/eval.jsonl",
        code=code("evaluate"),
    output:
        pattern("eval_base"),
    params:
        tracked=tracked("evaluate_base"),  # the params keys dvc.yaml tracks for it
    log:
        f"{LOGS}/evaluate_base/{{domain}}.log",
    threads: model_threads("train")
    resources:
        **cluster_resources("train"),
    shell:
        "locus evaluate {STAGE_ARGS} --model {input.model} --w0 {input.w0} --domains {wildcards.domain} "
        "--out {output} 2>&1 | tee {log}"


rule evaluate:
    message:
        "Held-out evaluation of {wildcards.domain}, lr={wildcards.lr}, seed={wildcards.seed}"
    input:
        model=MODEL,
        w0=W0,
        adapter=f"{CELL}/adapter_final",
        evals=eval_splits,
        code=code("evaluate"),
    output:
        f"{CELL}/eval.json",
    params:
        tracked=tracked("evaluate"),  # the params keys dvc.yaml tracks for it
    log:
        f"{LOGS}/evaluate/{{domain}}_{{method}}_lr={{lr}}_seed={{seed}}.log",
    threads: model_threads("train")
    resources:
        **cluster_resources("train"),
    shell:
        "locus evaluate {STAGE_ARGS} --method {wildcards.method} --model {input.model} --w0 {input.w0} --adapter {input.adapter} "
        "--out {output} 2>&1 | tee {log}"


# What `locus aggregate` reads for the evaluation tables (empty when off): the main method's cells,
# and every other method's for the methods comparison.
EVALUATION_INPUTS = [
    f"{layout.cell_dir(PARAMS, d, lr, s, method=m)}/eval.json"
    for m in (PARAMS.methods if len(PARAMS.methods) > 1 else [PARAMS.method])
    for d, lr, s in layout.evaluated_cells(PARAMS.for_method(m))
] + [str(layout.eval_base_path(PARAMS, d)) for d in PARAMS.evaluation.domains]
