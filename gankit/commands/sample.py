"""Write images from a checkpoint's generator.

    gankit sample runs/quickstart/<run id> --num 64 --out samples/ --grid
"""

NAME = "sample"
HELP = "generate images from a checkpoint"


def add_arguments(parser) -> None:
    parser.add_argument("checkpoint", help="checkpoint file or run directory")
    parser.add_argument("--num", type=int, default=64, help="number of images (default 64)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--grid", action="store_true", help="write one grid image instead of N files")
    parser.add_argument("--seed", type=int, default=0, help="seed of the latent vectors (default 0)")
    parser.add_argument("--class", dest="cls", type=int, metavar="K",
                        help="class-conditional generators: only class K (default: every class in turn)")
    parser.add_argument("--raw", action="store_true", help="use the raw generator even when the run kept an EMA")
    parser.add_argument("--device", default="auto")


def run(args) -> int:
    from pathlib import Path

    from gankit.conditional import class_labels, cycle_labels, num_classes
    from gankit.errors import GankitError
    from gankit.recipe import validate
    from gankit.training.build import build_generator, resolve_device
    from gankit.training.checkpoint import find_checkpoint, load_checkpoint, load_state
    from gankit.training.sampling import fixed_noise, generate, save_grid

    if args.num < 1:
        raise GankitError(f"--num must be at least 1, got {args.num}")
    path = find_checkpoint(args.checkpoint)
    ckpt = load_checkpoint(path)
    recipe = validate(ckpt["recipe"], f"{path} (the run's recipe)")
    device = resolve_device(args.device)
    G = build_generator(recipe).to(device)
    ema = ckpt.get("ema") if not args.raw else None
    # The EMA generator, when the run kept one, is what the run's own samples and evaluations used.
    load_state(G, ema["generator"] if ema else ckpt["generator"], "generator", str(path))
    classes = num_classes(G)
    labels = None
    if args.cls is not None:
        if classes is None:
            raise GankitError(f"--class {args.cls}: generator '{recipe.generator.name}' is not class-conditional")
        labels = class_labels(args.num, classes, args.cls, device)
    elif classes is not None:
        labels = cycle_labels(args.num, classes, device)
    images = generate(G, fixed_noise(args.num, G.nz, args.seed, device), labels=labels)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.grid:
        written = [save_grid(images, out / "grid.png")]
    else:
        written = [save_grid(img[None], out / f"{i:05d}.png", nrow=1) for i, img in enumerate(images)]
    print(f"wrote {len(written)} image{'s' if len(written) != 1 else ''} to {out}")
    return 0
