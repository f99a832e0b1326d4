# Targeted-layer validation of the layer map (params validation.domains; [] = off): rank the layers
# from the grid's layers.parquet, train adapters on the top-k / random k-sets with the unchanged
# init-adapter and train commands, and report whether top-k beats random-k beyond seed noise.
# The arms are known from params; only their layer lists come from arms.json, which the
# init-adapter command reads at run time, so no checkpoint is needed.
from locus.params import lr_label

VALIDATION_REPORT = f"{RESULTS}/validation.html"
VALIDATION_TARGETS = [VALIDATION_REPORT] if PARAMS.validation.domains else []  # part of `rule all` when on
ARMS = pattern("arms")
ARM = pattern("arm_dir")


wildcard_constraints:
    arm=r"top|bottom|random\d+",


rule rank_layers:
    message:
        "Ranking the layers of {wildcards.domain} and drawing the validation arms"
    input:
        layers=f"{RESULTS}/layers.parquet",
        code=code("rank-layers"),
    output:
        ARMS,
    params:
        tracked=tracked("rank_layers"),  # the params keys dvc.yaml tracks for it
    log:
        f"{LOGS}/rank_layers/{{domain}}.log",
    shell:
        "locus rank-layers {STAGE_ARGS} --layers {input.layers} --domain {wildcards.domain} "
        "--out {output} 2>&1 | tee {log}"


rule validation_init:
    message:
        "Initial adapter of validation arm {wildcards.arm}, seed {wildcards.seed} ({wildcards.domain})"
    input:
        model=MODEL,
        arms=ARMS,
        code=code("init-adapter"),
    output:
        directory(f"{ARM}/adapter_init"),
    params:
        tracked=tracked("validation_init"),  # the params keys dvc.yaml tracks for it
    log:
        f"{LOGS}/validation_init/{{domain}}_{{arm}}_seed={{seed}}.log",
    threads: model_threads("default")
    resources:
        **cluster_resources("load"),
    shell:
        "locus init-adapter {STAGE_ARGS} --model {input.model} --seed {wildcards.seed} "
        "--layers-from {input.arms} --arm {wildcards.arm} --out {output} 2>&1 | tee {log}"


rule validation_train:
    message:
        "Training validation arm {wildcards.arm}, seed {wildcards.seed} ({wildcards.domain})"
    input:
        model=MODEL,
        w0=W0,
        train=f"{DATA}/train.jsonl",
        eval=f"{DATA}/eval.jsonl",
        init=f"{ARM}/adapter_init",
        before=pattern("eval_base"),  # the base model's eval loss on this domain (rule evaluate_base)
        code=code("train"),
    output:
        adapter=directory(f"{ARM}/adapter_final"),
        log=f"{ARM}/train_log.csv",
        metrics=f"{ARM}/metrics.json",
    params:
        tracked=tracked("validation_train"),  # the params keys dvc.yaml tracks for it
        data=lambda w, input: os.path.dirname(input.train),
        out=lambda w, output: os.path.dirname(output.metrics),
        lr=lr_label(PARAMS.validation.learning_rate),
    log:
        f"{LOGS}/validation_train/{{domain}}_{{arm}}_seed={{seed}}.log",
    threads: model_threads("train")
    resources:
        **cluster_resources("train"),
    shell:
        "locus train {STAGE_ARGS} --model {input.model} --w0 {input.w0} --data {params.data} "
        "--init {input.init} --before {input.before} --lr {params.lr} --seed {wildcards.seed} "
        "--out {params.out} 2>&1 | tee {log}"


rule validation_report:
    message:
        "Rendering {output.html}"
    input:
        arms=expand(ARMS, domain=PARAMS.validation.domains),
        # The all-layer arm is the grid cell (trained by rule train when its seed is not a grid seed).
        metrics=[f"{layout.arm_dir(PARAMS, d, a, s)}/metrics.json" for d, a, s in layout.validation_runs(PARAMS)],
        code=code("validation-report"),
    output:
        html=VALIDATION_REPORT,
        table=f"{RESULTS}/validation.parquet",
    params:
        tracked=tracked("validation_report"),  # the params keys dvc.yaml tracks for it
    log:
        f"{LOGS}/validation_report.log",
    shell:
        "locus validation-report {STAGE_ARGS} --out {output.html} --table {output.table} 2>&1 | tee {log}"


localrules:
    rank_layers,
    validation_report,
