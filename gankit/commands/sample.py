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
    parser.add_argument("--device", default="auto")


def run(args) -> int:
    from pathlib import Path

    from gankit.errors import GankitError
    from gankit.recipe import validate
    from gankit.train.build import build_generator, resolve_device
    from gankit.train.checkpoint import find_checkpoint, load_checkpoint, load_state
    from gankit.train.sampling import fixed_noise, generate, save_grid

    if args.num < 1:
        raise GankitError(f"--num must be at least 1, got {args.num}")
    path = find_checkpoint(args.checkpoint)
    ckpt = load_checkpoint(path)
    recipe = validate(ckpt["recipe"], f"{path} (the run's recipe)")
    device = resolve_device(args.device)
    G = build_generator(recipe).to(device)
    load_state(G, ckpt["generator"], "generator", str(path))
    images = generate(G, fixed_noise(args.num, G.nz, args.seed, device))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.grid:
        written = [save_grid(images, out / "grid.png")]
    else:
        written = [save_grid(img[None], out / f"{i:05d}.png", nrow=1) for i, img in enumerate(images)]
    print(f"wrote {len(written)} image{'s' if len(written) != 1 else ''} to {out}")
    return 0
