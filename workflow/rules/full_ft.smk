# The full fine-tuning arm (params full_ft.domains; [] = off): every weight trained on the same data
# and budget as LoRA, its ΔW measured per module, compared with LoRA's layer map by `locus aggregate`.
from locus.analysis.experiments import expected_files as experiment_files

FULL_FT_CELL = pattern("full_ft_dir")


rule train_full:
    message:
        "Full fine-tuning {wildcards.domain}, lr={wildcards.lr}, seed={wildcards.seed}"
    input:
        model=MODEL,
        train=f"{DATA}/train.jsonl",
        eval=f"{DATA}/eval.jsonl",
        code=code("train-full"),
    output:
        delta=f"{FULL_FT_CELL}/delta.safetensors",
        log=f"{FULL_FT_CELL}/train_log.csv",
        metrics=f"{FULL_FT_CELL}/metrics.json",
    params:
        tracked=tracked("train_full"),  # the params keys dvc.yaml tracks for it
        data=lambda w, input: os.path.dirname(input.train),
        out=lambda w, output: os.path.dirname(output.metrics),
    log:
        f"{LOGS}/train_full/{{domain}}_lr={{lr}}_seed={{seed}}.log",
    threads: model_threads("train")
    resources:
        **cluster_resources("full_ft"),
    shell:
        "locus train-full {STAGE_ARGS} --model {input.model} --data {params.data} "
        "--lr {wildcards.lr} --seed {wildcards.seed} --out {params.out} 2>&1 | tee {log}"


rule full_ft_effective:
    message:
        "Full-FT ΔW metrics for {wildcards.domain}, lr={wildcards.lr}, seed={wildcards.seed}"
    input:
        model=MODEL,
        delta=f"{FULL_FT_CELL}/delta.safetensors",
        code=code("full-ft-effective"),
    output:
        f"{FULL_FT_CELL}/effective.parquet",
    log:
        f"{LOGS}/full_ft_effective/{{domain}}_lr={{lr}}_seed={{seed}}.log",
    threads: model_threads("train")
    resources:
        **cluster_resources("train"),
    shell:
        "locus full-ft-effective {STAGE_ARGS} --model {input.model} --delta {input.delta} "
        "--out {output} 2>&1 | tee {log}"


# What `locus aggregate` reads for the full-FT tables (empty when off), and the optional tables it
# writes for the experiments that are on (locus.analysis.experiments).
FULL_FT_INPUTS = [f"{layout.full_ft_dir(PARAMS, d, lr, s)}/effective.parquet" for d, lr, s in layout.full_ft_cells(PARAMS)]
EXPERIMENT_TABLES = {f.split(".")[0]: f"{RESULTS}/{f}" for f in experiment_files(PARAMS)}
