"""Export a run's generator to a file that runs without gankit.

    gankit export RUN --format pt2 --out generator.pt2            # torch.export: torch.export.load(FILE).module()
    gankit export RUN --format torchscript --out generator.pt     # torch.jit.load(FILE), also from C++ (LibTorch)
    gankit export RUN --format onnx --out generator.onnx          # onnxruntime; needs pip install 'gankit[export]'
    gankit export RUN --format state_dict --out generator.pth     # weights + the recipe's generator section

The model maps z (N x nz, float32) [and labels (N,), int64, for a
class-conditional generator] to images (N x C x H x W), any batch size N,
as ``load_generator(RUN)(z)`` and ``gankit sample`` compute them: BatchNorm
in the run's ``sampling.batchnorm`` mode (``--batchnorm`` another),
StyleGAN2's noise inputs constant (noise_mode='const'). The EMA generator
when the run kept one (``--raw``: the trained weights). Each file
is read back and checked against the generator on fixed latents (within
1e-5) before it is kept. Default ``--out``: RUN/exports/generator.<format>.
"""

from __future__ import annotations

NAME = "export"
HELP = "export a generator to pt2 (torch.export), TorchScript, ONNX or a state dict"


FORMATS = ("pt2", "torchscript", "onnx", "state_dict")  # gankit.runs.export.FORMATS, without importing torch here


def add_arguments(parser) -> None:
    parser.add_argument("checkpoint", help="run directory (its checkpoints/last.pt) or checkpoint file")
    parser.add_argument("--format", required=True, choices=FORMATS, help="pt2, torchscript, onnx or state_dict")
    parser.add_argument("--out", metavar="FILE",
                        help="the file to write (default: RUN/exports/generator.pt2, .torchscript.pt, .onnx, "
                             ".state_dict.pt)")
    parser.add_argument("--raw", action="store_true", help="export the raw generator even when the run kept an EMA")
    parser.add_argument("--batchnorm", choices=("running", "standing", "batch"),
                        help="BatchNorm's statistics in the file (default: the run's sampling.batchnorm)")
    parser.add_argument("--truncation", type=float, metavar="PSI",
                        help="bake in the generator's own truncation trick (StyleGAN2: w toward the mean w)")
    parser.add_argument("--tolerance", type=float, default=1e-5,
                        help="largest accepted |exported - eager| in the check after writing (default 1e-5; "
                             "relative to the largest |pixel| when that is above 1)")


def _default_out(checkpoint, fmt: str):
    from gankit.runs.export import SUFFIXES

    folder = checkpoint.parent
    run = folder.parent if folder.name == "checkpoints" else folder
    return run / "exports" / f"generator{SUFFIXES[fmt]}"


def run(args) -> int:
    from pathlib import Path

    from gankit.core.errors import GankitError
    from gankit.nn.conditional import num_classes
    from gankit.runs.export import SUFFIXES, export_generator, require_onnx
    from gankit.runs.loading import load_checkpoint_generator
    from gankit.sampling import has_batchnorm

    if not args.tolerance > 0:
        raise GankitError(f"--tolerance must be > 0, got {args.tolerance}")
    if args.format == "onnx":
        require_onnx()  # before loading anything: the missing extra is the first thing to say
    loaded = load_checkpoint_generator(args.checkpoint, ema=not args.raw, device="cpu", batchnorm=args.batchnorm)
    out = Path(args.out) if args.out else _default_out(loaded.path, args.format)
    if out.is_dir():
        example = out / f"generator{SUFFIXES[args.format]}"
        raise GankitError(f"--out {out} is a folder; give the file to write, e.g. {example}")
    result = export_generator(loaded.G, args.format, out, recipe=loaded.recipe, ema=loaded.ema,
                              truncation=args.truncation, tolerance=args.tolerance, batchnorm=loaded.batchnorm)
    G = loaded.G
    labels = ", labels (N,) int64" if num_classes(G) is not None else ""
    which = "EMA" if loaded.ema else "raw"
    bn = f", BatchNorm on {loaded.batchnorm} statistics" if has_batchnorm(G) else ""
    unfused = f"; unfused convolutions: {result.sample_diff:.2g} from gankit sample's" if result.sample_diff else ""
    print(f"wrote {result.path} ({args.format}, the {which} generator{bn}: z (N, {G.nz}) float32{labels} -> images; "
          f"read back and checked on {result.batch} latents: max |exported - eager| = {result.max_diff:.2g}{unfused})")
    return 0
