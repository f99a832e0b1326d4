"""Stage: snapshot the LoRA adapter before training (PEFT format, safetensors).

The seed is set immediately before `get_peft_model`, because PEFT draws every `lora_A` from
torch's global RNG (Kaiming-uniform, bound 1/sqrt(in_features)) and sets every `lora_B` to
zero. The initial adapter depends only on the seed, the LoRA config and the module shapes, so we
build it on the unquantized base (cheap, device-free); the train stage loads this exact file.
"""

from __future__ import annotations

from peft import get_peft_model

from locus import io, options
from locus.analysis.validation import read_arm_layers
from locus.params import name_argument
from locus.training.modeling import adapter_config, load_base, seed_everything


def add_arguments(parser) -> None:
    options.add_model(parser)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", required=True, help="adapter directory to write")
    # Targeted-layer validation: adapt only some layers (PEFT layers_to_transform).
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--layers", default=None, help="comma-separated layer indices to adapt, e.g. 3,7,12 (default: every layer)"
    )
    which.add_argument(
        "--layers-from", default=None, help="arms.json of `locus rank-layers`: adapt the layers of --arm"
    )
    parser.add_argument("--arm", default=None, type=name_argument, help="arm of --layers-from: top, bottom or randomN")


def selected_layers(args, n_layers: int | None) -> list[int] | None:
    """The layers to adapt from --layers or --layers-from/--arm, checked against the model; None = all."""
    if args.layers_from or args.arm:
        if not (args.layers_from and args.arm):
            raise ValueError("--layers-from and --arm go together")
        layers, source = read_arm_layers(args.layers_from, args.arm), f"{args.layers_from}: arms.{args.arm}"
    elif args.layers is not None:
        try:
            layers, source = [int(x) for x in args.layers.split(",")], "--layers"
        except ValueError:
            raise ValueError(f"--layers {args.layers!r}: expected comma-separated integers, e.g. 3,7,12") from None
    else:
        return None
    bad = [x for x in layers if x < 0 or (n_layers is not None and x >= n_layers)]
    if bad or len(set(layers)) != len(layers):
        raise ValueError(f"{source}: {layers} must be distinct layer indices of the model's {n_layers} layers")
    return sorted(layers)


def run(args, params) -> None:
    base = load_base(params, args.model, quantize=False, cpu=True)  # lora_A from the CPU RNG, on any host
    layers = selected_layers(args, getattr(base.config, "num_hidden_layers", None))
    seed_everything(args.seed)
    model = get_peft_model(base, adapter_config(params, layers))
    with io.atomic_path(args.out, is_dir=True) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    where = "every layer" if layers is None else f"layers {','.join(map(str, layers))}"
    print(f"initial adapter (seed {args.seed}, {where}, {trainable:,} trainable parameters) -> {args.out}")
