"""Write images from a run's (or checkpoint's) generator: samples, a grid, walks between latents.

    gankit sample runs/quickstart/<run id> --num 64 --grid --scale 4      # RUN/samples/sample_seed0.png
    gankit sample RUN --num 16 --seed 3                                    # 16 files sample_seed3_00000.png ...
    gankit sample RUN --interpolate 8 --num 6 --gif                        # interp_slerp_seed0.png and .gif
    gankit sample RUN --truncation 0.7 --grid                              # the truncation trick

Images are what ``gankit.generate(G, N, seed=S)`` gives (the same bytes as
``gankit.save_grid`` of it), for ``G = gankit.load_generator(RUN)``: z ~ N(0, I)
from ``--seed``, BatchNorm in the run's ``sampling.batchnorm`` mode as its own
grids (``--batchnorm`` another); a conditional generator draws every class in
turn unless ``--class K``.

``--interpolate K``: row i of a K-column grid walks from latent i to latent
i+1 of the seed's latents (``--num`` rows, default 8; both ends included), by
``--slerp`` (the default: Gaussian z lives near a sphere) or ``--lerp``.
``--gif`` adds an animation of the walk: every row is a tile, all move
together, forth and back. A conditional generator keeps one class per row.

``--truncation PSI``: a generator with its own truncation trick (StyleGAN2:
w pulled toward the mean w, psi in [0, 1]) uses it; any other has the
entries of z beyond ±PSI drawn again (BigGAN's trick, PSI > 0).

Files go to ``--out`` (default: the run's ``samples/`` folder, beside its
``step_*.png`` training grids, which are never replaced) named after what
made them (``sample_seed0.png``, ``sample_seed0_class3_psi0.7.png``,
``interp_slerp_seed0.gif``) unless ``--name``.
"""

from __future__ import annotations

NAME = "sample"
HELP = "generate images, grids and latent walks from a run or checkpoint"


def add_arguments(parser) -> None:
    parser.add_argument("checkpoint", help="run directory (its checkpoints/last.pt) or checkpoint file")
    parser.add_argument("--num", type=int, help="images (default 64); with --interpolate the rows, one walk each "
                                               "(default 8)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the latent vectors (default 0)")
    parser.add_argument("--grid", action="store_true", help="write one grid image instead of N files")
    parser.add_argument("--nrow", type=int, help="images per grid row (default: a square grid); with --interpolate "
                                                 "the tiles per row of the GIF")
    parser.add_argument("--scale", type=int, default=1,
                        help="enlarge by this whole factor, nearest neighbour, so small images stay sharp (default 1)")
    parser.add_argument("--out", help="output folder (default: the run's samples/ folder)")
    parser.add_argument("--name", help="file name without extension (default: from the options, e.g. sample_seed0)")
    parser.add_argument("--class", dest="cls", type=int, metavar="K",
                        help="class-conditional generators: only class K (default: every class in turn)")
    parser.add_argument("--truncation", type=float, metavar="PSI",
                        help="the truncation trick: the generator's own (StyleGAN2, in w) or z resampled beyond ±PSI")
    parser.add_argument("--interpolate", type=int, metavar="K", help="walk between latents in K steps (a K-column "
                                                                     "grid, one row per walk)")
    path = parser.add_mutually_exclusive_group()
    path.add_argument("--slerp", dest="path", action="store_const", const="slerp",
                      help="--interpolate along great circles (the default, for Gaussian z)")
    path.add_argument("--lerp", dest="path", action="store_const", const="lerp",
                      help="--interpolate along straight lines")
    parser.add_argument("--gif", action="store_true", help="--interpolate: also write an animated GIF of the walk")
    parser.add_argument("--raw", action="store_true", help="use the raw generator even when the run kept an EMA")
    parser.add_argument("--batchnorm", choices=("running", "standing", "batch"),
                        help="BatchNorm's statistics (default: the run's sampling.batchnorm; batch: each image "
                             "depends on the others in its batch)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:N")


def _check(args) -> None:
    from gankit.core.errors import GankitError

    walk = args.interpolate is not None
    if args.num is not None and args.num < 1:
        raise GankitError(f"--num must be at least 1, got {args.num}")
    if args.scale < 1:
        raise GankitError(f"--scale must be a whole number >= 1, got {args.scale}")
    if args.nrow is not None and args.nrow < 1:
        raise GankitError(f"--nrow must be at least 1, got {args.nrow}")
    if walk and args.interpolate < 2:
        raise GankitError(f"--interpolate needs at least 2 steps (both ends), got {args.interpolate}")
    if not walk:
        for flag, given in (("--gif", args.gif), ("--slerp/--lerp", args.path)):
            if given:
                raise GankitError(f"{flag} needs --interpolate K (the number of steps of each walk)")
    if walk and args.nrow is not None and not args.gif:
        raise GankitError("--nrow with --interpolate lays out the GIF's tiles: add --gif (the PNG has one walk a row)")
    if args.name is not None and (not args.name or "/" in args.name or "\\" in args.name):
        raise GankitError(f"--name {args.name!r}: give a file name without folders; --out chooses the folder")


def _name(args, stem: str) -> str:
    if args.name:
        name = args.name
        return name[:-4] if name.lower().endswith((".png", ".gif")) else name
    parts = [stem, f"seed{args.seed}"]
    if args.cls is not None:
        parts.append(f"class{args.cls}")
    if args.truncation is not None:
        parts.append(f"psi{args.truncation:g}")
    if args.raw:
        parts.append("raw")
    if args.batchnorm:
        parts.append(f"bn{args.batchnorm}")
    return "_".join(parts)


def _default_out(checkpoint):
    """RUN/samples for RUN/checkpoints/X.pt; a ``samples`` folder beside any other checkpoint file."""
    folder = checkpoint.parent
    return (folder.parent if folder.name == "checkpoints" else folder) / "samples"


def _targets_ok(paths) -> None:
    from gankit.core.errors import GankitError

    for path in paths:
        if path.name.startswith("step_") and path.exists():
            raise GankitError(f"{path} is one of the run's training grids and would be replaced; "
                              "choose another --name (or --out)")


def _walks(G, args, labels):
    """(images of every walk, row after row, K per row), from latents 0..num of the seed."""
    import torch

    from gankit.sampling import generate_from, has_own_truncation, interpolation, latents

    rows, steps = args.num or 8, args.interpolate
    own = args.truncation is not None and has_own_truncation(G)
    device = next((p.device for p in G.parameters()), torch.device("cpu"))
    ends = latents(rows + 1, G.nz, args.seed, None if own else args.truncation, device)
    z = torch.cat([interpolation(ends[i], ends[i + 1], steps, args.path or "slerp") for i in range(rows)])
    if labels is not None:
        labels = labels[:rows].repeat_interleave(steps)  # one class per row
    return generate_from(G, z, labels, truncation=args.truncation if own else None, seed=args.seed)


def run(args) -> int:
    from pathlib import Path

    from gankit.core.errors import GankitError
    from gankit.nn.conditional import class_labels, cycle_labels, num_classes
    from gankit.runs.loading import load_checkpoint_generator
    from gankit.sampling import generate, save_gif, save_grid

    _check(args)
    loaded = load_checkpoint_generator(args.checkpoint, ema=not args.raw, device=args.device, batchnorm=args.batchnorm)
    G = loaded.G
    classes = num_classes(G)
    if args.cls is not None and classes is None:
        raise GankitError(f"--class {args.cls}: generator '{loaded.recipe.generator.name}' is not class-conditional")
    out = _default_out(loaded.path) if args.out is None else Path(args.out)
    device = next((p.device for p in G.parameters()), None)

    if args.interpolate is not None:
        rows, steps = args.num or 8, args.interpolate
        labels = None
        if classes is not None:  # one class a row
            labels = (class_labels(rows, classes, args.cls, device) if args.cls is not None
                      else cycle_labels(rows, classes, device))
        name = _name(args, f"interp_{args.path or 'slerp'}")
        targets = [out / f"{name}.png"] + ([out / f"{name}.gif"] if args.gif else [])
        _targets_ok(targets)
        images = _walks(G, args, labels)
        out.mkdir(parents=True, exist_ok=True)
        save_grid(images, targets[0], nrow=steps, scale=args.scale)
        if args.gif:
            frames = images.view(rows, steps, *images.shape[1:]).transpose(0, 1)  # step x walk x C x H x W
            save_gif(frames, targets[1], nrow=args.nrow, scale=args.scale)
        print("wrote " + " and ".join(str(t) for t in targets) + f" ({rows} walk{'s' if rows != 1 else ''} "
              f"of {steps} steps, {args.path or 'slerp'})")
        return 0

    n = args.num or 64
    name = _name(args, "sample")
    targets = [out / f"{name}.png"] if args.grid else [out / f"{name}_{i:05d}.png" for i in range(n)]
    _targets_ok(targets)
    images = generate(G, n, seed=args.seed, labels=args.cls, truncation=args.truncation)
    out.mkdir(parents=True, exist_ok=True)
    if args.grid:
        save_grid(images, targets[0], nrow=args.nrow, scale=args.scale)
        print(f"wrote {targets[0]} ({n} image{'s' if n != 1 else ''})")
    else:
        for img, target in zip(images, targets):
            save_grid(img[None], target, nrow=1, scale=args.scale)
        print(f"wrote {n} image{'s' if n != 1 else ''} to {out} ({targets[0].name} ...)")
    return 0
