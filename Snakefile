# Locus: QLoRA-fine-tune on every (domain, lr, seed) of the grid and report where learning happened.
# Wiring only: every rule runs a `locus <stage>` command (the same ones dvc.yaml runs).
#   snakemake --cores 1 results/report.html                      default grid (params.yaml)
#   snakemake --cores 1 --config preset=smoke results/smoke/report.html
include: "workflow/rules/common.smk"
include: "workflow/rules/prepare.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/trajectory.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/full_ft.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/validation.smk"
include: "workflow/rules/external.smk"


rule all:
    input:
        REPORT,
        VALIDATION_TARGETS,  # [] unless params validation.domains is set
    default_target: True
