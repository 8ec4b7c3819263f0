"""Measure a checkpoint against its recipe's dataset, or one image folder against another.

    gankit eval runs/quickstart/<run id> --metrics fid,kid,swd
    gankit eval --real data/real --fake samples/ --metrics fid,is,kid --json

Folders: the .png/.jpg/.jpeg files directly inside, as torch-fidelity reads
them. --json prints one JSON object (every value, every row's provenance) on
stdout and nothing else; notices go to stderr. With --kid-subset-size equal
to the number of images and --is-splits 1 the numbers are deterministic.
"""

from __future__ import annotations

import json
import sys

NAME = "eval"
HELP = "compute FID/IS/KID/PRDC/SWD of a checkpoint, or of an image folder against another"

DEFAULT_METRICS = "fid,is,kid"
# command-line flag -> eval section key
FLAGS = {
    "num_fake": "--num-fake", "num_real": "--num-real", "kid_subset_size": "--kid-subset-size",
    "kid_subsets": "--kid-subsets", "is_splits": "--is-splits", "batch_size": "--batch-size",
    "seed": "--seed", "cache_dir": "--cache-dir", "inception_weights": "--inception-weights",
    "feature_extractor": "--feature-extractor", "metrics": "--metrics",
}


def add_arguments(parser) -> None:
    parser.add_argument("checkpoint", nargs="?", help="checkpoint file or run directory")
    parser.add_argument("--real", metavar="DIR", help="folder of reference images (with --fake)")
    parser.add_argument("--fake", metavar="DIR", help="folder of images to judge (with --real)")
    parser.add_argument("--metrics",
                        help=f"comma-separated metric names (default: the recipe's, else {DEFAULT_METRICS})")
    parser.add_argument("--num-fake", type=int, help="images to generate (folders: at most this many)")
    parser.add_argument("--num-real", type=int, help="reference images (default: the recipe's; folders: all)")
    parser.add_argument("--kid-subset-size", type=int, help="images per KID subset (eval.kid_subset_size)")
    parser.add_argument("--kid-subsets", type=int, help="number of KID subsets (eval.kid_subsets)")
    parser.add_argument("--is-splits", type=int, help="Inception Score splits (eval.is_splits)")
    parser.add_argument("--feature-extractor", help="feature_extractors registry name for FID/KID/PRDC")
    parser.add_argument("--inception-weights", metavar="FILE", help="Inception weights file to use")
    parser.add_argument("--cache-dir", metavar="DIR", help="reference-features cache folder")
    parser.add_argument("--batch-size", type=int, help="images per extractor pass")
    parser.add_argument("--seed", type=int, help="evaluation seed (latents, subsets)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout, nothing else")


def _eval_section(base: dict, args):
    """The eval section with the command line's values on top, validated."""
    from pydantic import ValidationError

    from gankit.errors import GankitError
    from gankit.plugins import registry
    from gankit.recipe.schema import EvalSection

    values = dict(base)
    for key in FLAGS:
        given = getattr(args, key)
        if given is not None:
            values[key] = [m.strip() for m in given.split(",") if m.strip()] if key == "metrics" else given
    if not values.get("metrics"):
        values["metrics"] = DEFAULT_METRICS.split(",")
    values["on_missing_weights"] = "refuse"  # a measuring command never silently drops a metric
    try:
        cfg = EvalSection.model_validate(values)
    except ValidationError as exc:
        problems = [f"{FLAGS.get(str(e['loc'][0]), e['loc'][0])}: {e['msg']} (got {e['input']!r})"
                    for e in exc.errors()]
        raise GankitError("invalid evaluation settings:\n  " + "\n  ".join(problems)) from None
    reg = registry("metrics")
    for name in cfg.metrics:
        if name not in reg:
            raise GankitError(f"--metrics: {reg.unknown_message(name)}")
    return cfg


def _folders(args, device, log):
    from gankit.errors import GankitError
    from gankit.eval.engine import Engine, FolderImages, Reference
    from gankit.eval.images import ImageFolder

    if not (args.real and args.fake):
        raise GankitError("give both --real DIR and --fake DIR (or a CHECKPOINT instead)")
    real = ImageFolder(args.real, "--real folder")
    fake = ImageFolder(args.fake, "--fake folder")
    first = real[0]
    size = int(first.shape[-1]) if hasattr(first, "shape") else 64  # what a custom extractor is told
    base = {"num_real": args.num_real or len(real), "num_fake": max(2, args.num_fake or len(fake))}
    cfg = _eval_section(base, args)
    engine = Engine(cfg, device, channels=3, image_size=size, log=log)
    notices = engine.prepare()
    rows = engine.measure(Reference(real, real.identity()), FolderImages(fake, args.num_fake, cfg.seed), None)
    return rows, notices


def _checkpoint(args, device, log):
    from gankit.eval.evaluator import Evaluator
    from gankit.recipe import validate
    from gankit.training.build import build_dataset, build_generator
    from gankit.training.checkpoint import find_checkpoint, load_checkpoint, load_state
    from gankit.training.sampling import generate

    path = find_checkpoint(args.checkpoint)
    ckpt = load_checkpoint(path)
    recipe = validate(ckpt["recipe"], f"{path} (the run's recipe)")
    recipe.eval = _eval_section(recipe.eval.model_dump(), args)
    G = build_generator(recipe).to(device)
    load_state(G, ckpt["generator"], "generator", str(path))
    evaluator = Evaluator(recipe, device, lambda: build_dataset(recipe), log=log)
    notices = evaluator.prepare()
    rows = evaluator.evaluate(lambda z: generate(G, z), G.nz, ckpt.get("step"))
    for row in rows:
        row["checkpoint"] = str(path)
    return rows, notices


def _print_table(rows) -> None:
    for row in rows:
        std = f" ± {row['std']:.6g}" if row.get("std") is not None else ""
        print(f"{row['metric']:<16} {row['value']:.6g}{std}")
    if rows:
        r = rows[0]
        ref = r["reference"]
        print(f"reference: {ref.get('dataset')} {ref.get('root') or ''} ({ref.get('num_images')} images); "
              f"{r['num_real']} real vs {r['num_fake']} generated")
        for row in rows:
            if row.get("reference_stats") and row.get("cache_file"):
                print(f"reference features: {row['reference_stats']} ({row['cache_file']})")
                break
        seen = set()
        for row in rows:
            if row["feature_extractor"] in seen or not row.get("weights_sha256"):
                continue
            seen.add(row["feature_extractor"])
            print(f"{row['feature_extractor']}: weights sha256 {row['weights_sha256'][:16]}..., "
                  f"input {row['input_resolution']}, resize {row['resize']}, antialias {row['antialias']}")


def run(args) -> int:
    from gankit.errors import GankitError
    from gankit.training.build import resolve_device

    def log(message: str) -> None:
        print(message, file=sys.stderr)

    device = resolve_device(args.device)
    if args.checkpoint and (args.real or args.fake):
        raise GankitError("give a CHECKPOINT or --real/--fake folders, not both")
    if args.checkpoint:
        rows, notices = _checkpoint(args, device, log)
    else:
        rows, notices = _folders(args, device, log)
    for notice in notices:
        log(notice)
    for note in dict.fromkeys(n for row in rows for n in row.get("notes", [])):
        log(f"note: {note}")
    if args.json:
        out = {
            "values": {row["metric"]: row["value"] for row in rows},
            "std": {row["metric"]: row["std"] for row in rows if row.get("std") is not None},
            "rows": rows,
            "notices": notices,
        }
        print(json.dumps(out, default=str))
    else:
        _print_table(rows)
    return 0
