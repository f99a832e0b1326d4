# Locus: QLoRA-fine-tune on every (domain, lr, seed) of the grid and report where learning happened.
# Wiring only: every rule runs a `locus <stage>` command (the same ones dvc.yaml runs).
#   snakemake --cores 1 results/report.html                      default grid (params.yaml)
#   snakemake --cores 1 --config preset=smoke results/smoke/report.html
include: "workflow/rules/common.smk"
include: "workflow/rules/prepare.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/analysis.smk"


rule all:
    input:
        REPORT,
    default_target: True
