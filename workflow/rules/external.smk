# Adapters trained elsewhere (params.yaml `external:`): results/external/{name}/report.html runs
# `locus external` on the base model and adapters listed under external.{name}. Not part of `all`.
import shlex


def external_entry(wildcards):
    if wildcards.name not in PARAMS.external:
        raise ValueError(f"{PARAMS_FILE}: external.{wildcards.name} is not defined "
                         f"(defined: {', '.join(PARAMS.external) or 'none'})")
    return PARAMS.external[wildcards.name]


def external_inputs(wildcards):
    e = external_entry(wildcards)
    return {"model": e.model, "adapters": list(e.adapters.values()) + list(e.init.values())}


def external_args(wildcards):
    e = external_entry(wildcards)
    args = [f"--adapter {shlex.quote(f'{k}={v}')}" for k, v in e.adapters.items()]
    args += [f"--init {shlex.quote(f'{k}={v}')}" for k, v in e.init.items()]
    args += [f"--base-quantization {e.base_quantization}"] if e.base_quantization else []
    return " ".join(args)


rule external:
    message:
        "Analysing adapters trained elsewhere: external.{wildcards.name}"
    input:
        unpack(external_inputs),
        code=code("external"),
    output:
        html=f"{RESULTS}/external/{{name}}/report.html",
    params:
        args=external_args,
        out=lambda w, output: os.path.dirname(output.html),
    wildcard_constraints:
        name=r"[A-Za-z0-9_-]+",
    log:
        f"{LOGS}/external/{{name}}.log",
    threads: model_threads("default")
    resources:
        **cluster_resources("default"),
    shell:
        "locus external {STAGE_ARGS} --model {input.model:q} {params.args} --out {params.out} 2>&1 | tee {log}"
