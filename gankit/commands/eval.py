"""Measure a run's checkpoint against its recipe's dataset, or one image folder against another.

    gankit eval runs/quickstart/<run id> --metrics fid,kid,swd
    gankit eval runs/quickstart/<run id> --log                    # rows appended to the run's record
    gankit eval runs/quickstart/<run id> --all-checkpoints --log  # a whole curve, after the fact
    gankit eval --real data/real --fake samples/ --metrics fid,is,kid --json
    torchrun --nproc_per_node=4 -m gankit eval runs/<name>/<run id>   # the processes share the work

A run directory is measured at its ``checkpoints/best.pt`` when it has one,
else ``last.pt`` (``--checkpoint FILE`` picks another); ``--all-checkpoints``
measures every ``checkpoints/step_*.pt`` (kept with ``train.keep_every``)
and ``last.pt`` (unless a kept one holds its step). ``--log`` appends the rows to the run's ``metrics.jsonl``
and, with wandb on, to its wandb run, so ``gankit compare``, ``gankit
report`` and wandb show them. Folders: the .png/.jpg/.jpeg files directly
inside, as torch-fidelity reads them. --json prints one JSON object (every
value, every row's provenance) on stdout and nothing else; notices go to
stderr. Under torchrun, rank 0 alone prints and writes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

NAME = "eval"
HELP = "compute FID/FD-DINOv2/IS/KID/PRDC/SWD of a run's checkpoints, or of an image folder against another"

DEFAULT_METRICS = "fid,is,kid"
# command-line flag -> eval section key
FLAGS = {
    "num_fake": "--num-fake", "num_real": "--num-real", "kid_subset_size": "--kid-subset-size",
    "kid_subsets": "--kid-subsets", "is_splits": "--is-splits", "batch_size": "--batch-size",
    "seed": "--seed", "cache_dir": "--cache-dir", "inception_weights": "--inception-weights",
    "feature_extractor": "--feature-extractor", "metrics": "--metrics", "dinov2_weights": "--dinov2-weights",
    "bootstrap_resamples": "--bootstrap-resamples",
}


def add_arguments(parser) -> None:
    parser.add_argument("run", nargs="?", metavar="RUN_DIR_OR_CHECKPOINT", help="a run directory or checkpoint file")
    parser.add_argument("--checkpoint", metavar="FILE", help="the checkpoint of the run to measure")
    parser.add_argument("--all-checkpoints", action="store_true",
                        help="measure every kept checkpoint (checkpoints/step_*.pt) and last.pt")
    parser.add_argument("--log", action="store_true",
                        help="append the rows to the run's metrics.jsonl (and its wandb run)")
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
    parser.add_argument("--dinov2-weights", metavar="FILE", help="DINOv2 ViT-L/14 weights file (fd_dinov2)")
    parser.add_argument("--bootstrap-resamples", type=int, metavar="N",
                        help="resamples for the 95%% interval of FID, KID, FD-DINOv2, per-class FID "
                             "(0: none; default 50)")
    parser.add_argument("--cache-dir", metavar="DIR", help="reference-features cache folder")
    parser.add_argument("--batch-size", type=int, help="images per extractor pass")
    parser.add_argument("--seed", type=int, help="evaluation seed (latents, subsets)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--batchnorm", choices=("running", "standing", "batch"),
                        help="the generator's BatchNorm when sampling (default: its run's sampling.batchnorm)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout, nothing else")


def _eval_section(base: dict, args, host):
    """The eval section with the command line's values on top, validated."""
    from pydantic import ValidationError

    from gankit.core.errors import GankitError
    from gankit.recipe.schema import EvalSection

    values = dict(base)
    for key in FLAGS:
        given = getattr(args, key)
        if given is not None:
            values[key] = [m.strip() for m in given.split(",") if m.strip()] if key == "metrics" else given
    if not values.get("metrics"):
        values["metrics"] = DEFAULT_METRICS.split(",")
    # Measure what can be measured and name the rest (run() refuses when nothing is left).
    values["on_missing_weights"] = "skip"
    try:
        cfg = EvalSection.model_validate(values)
    except ValidationError as exc:
        problems = [f"{FLAGS.get(str(e['loc'][0]), e['loc'][0])}: {e['msg']} (got {e['input']!r})"
                    for e in exc.errors()]
        raise GankitError("invalid evaluation settings:\n  " + "\n  ".join(problems)) from None
    reg = host.registry("metrics")
    for entry in cfg.metrics:
        name = entry if isinstance(entry, str) else entry.name
        if name not in reg:
            raise GankitError(f"--metrics: {reg.unknown_message(name)}")
    return cfg


def _fallback(args) -> str | None:
    """SWD stands in when the metrics were not chosen on the command line and none can be measured."""
    return None if args.metrics else "swd"


def _something_to_measure(metrics, skipped: dict[str, str], notices: list[str], log) -> None:
    """Refuse (exit 2) when every metric was skipped; otherwise say, before measuring, what was skipped and how
    to measure it."""
    from gankit.core.errors import GankitError
    from gankit.eval.weights import IS_NEEDS_CLASSIFIER

    missing = [name for name, why in skipped.items() if why != IS_NEEDS_CLASSIFIER]
    dinov2 = any("DINOv2" in why for why in skipped.values())
    which = ["`gankit weights fetch` gets the Inception weights"] if any(
        "DINOv2" not in skipped[n] for n in missing) else []
    which += ["`gankit weights fetch dinov2` gets the DINOv2 weights"] if dinov2 else []
    fix = (f"{'; '.join(which)} (then run this again); `--metrics swd` measures what needs no weights"
           if missing else "")
    if not metrics:
        why = "\n".join(f"    {name}: {reason}" for name, reason in skipped.items())
        raise GankitError(f"nothing to measure: every metric asked for was skipped\n{why}"
                          + (f"\n    {fix}" if fix else "\n    `--metrics swd` measures what needs no weights"))
    if missing:
        notices.append(f"eval: {fix}")
    for notice in notices:
        log(notice)


def _folders(args, device, log, host):
    from gankit.core.errors import GankitError
    from gankit.eval.engine import Engine, FolderImages, Reference
    from gankit.eval.images import ImageFolder

    if not (args.real and args.fake):
        raise GankitError("give both --real DIR and --fake DIR (or a run directory or checkpoint instead)")
    real = ImageFolder(args.real, "--real folder")
    fake = ImageFolder(args.fake, "--fake folder")
    first = real[0]
    size = int(first.shape[-1]) if hasattr(first, "shape") else 64  # what a custom extractor is told
    base = {"num_real": args.num_real or len(real), "num_fake": max(2, args.num_fake or len(fake))}
    cfg = _eval_section(base, args, host)
    engine = Engine(cfg, device, channels=3, image_size=size, log=log, registry=host.registry)
    notices = engine.prepare(fallback=_fallback(args))
    _something_to_measure(engine.metrics, engine.skipped, notices, log)
    rows = engine.measure(Reference(real, real.identity()), FolderImages(fake, args.num_fake, cfg.seed), None)
    return [(None, rows)], notices, dict(engine.skipped)


def checkpoints_to_measure(args) -> list[Path]:
    """The checkpoint files the command line names, in step order."""
    from gankit.core.errors import GankitError
    from gankit.rundir.checkpoint import find_checkpoint

    if args.checkpoint:
        return [find_checkpoint(args.checkpoint)]
    target = Path(args.run)
    if not target.is_dir():
        return [find_checkpoint(target)]
    folder = target / "checkpoints"
    if args.all_checkpoints:
        kept = sorted(folder.glob("step_*.pt"))
        last = folder / "last.pt"
        found = kept + ([last] if last.is_file() else [])
        if not found:
            raise GankitError(f"'{target}' has no checkpoints to measure (checkpoints/step_*.pt or last.pt)")
        return found
    best = folder / "best.pt"
    return [best if best.is_file() else find_checkpoint(target)]


def _checkpoints(args, device, log, host, world):
    from gankit.eval.evaluator import Evaluator
    from gankit.nn.conditional import num_classes
    from gankit.runs.loading import load_checkpoint_generator
    from gankit.sampling import generate_from
    from gankit.recipe.build import build_dataset

    results, notices, evaluator, first = [], [], None, None
    measured: dict = {}  # step -> checkpoint: last.pt is often the same weights as the last kept step_*.pt
    for path in checkpoints_to_measure(args):
        loaded = load_checkpoint_generator(path, device=device, batchnorm=args.batchnorm)
        step = loaded.checkpoint.get("step")
        if step in measured:
            log(f"{path}: step {step}, measured already as {measured[step].name}")
            continue
        measured[step] = path
        recipe, G = loaded.recipe, loaded.G
        if evaluator is None:  # one evaluator for all checkpoints: the reference side is read once
            first = recipe
            recipe.eval = _eval_section(recipe.eval.model_dump(), args, host)
            evaluator = Evaluator(recipe, device, lambda: build_dataset(recipe), log=log, registry=host.registry)
            notices = evaluator.prepare(fallback=_fallback(args), conditional=num_classes(G) is not None)
            _something_to_measure(evaluator.metrics, evaluator.skipped, notices, log)
        rows = evaluator.evaluate(lambda z, labels=None, G=G: generate_from(G, z, labels), G.nz, step,
                                  generator="ema" if loaded.ema else "raw", share=world, classes=num_classes(G))
        for row in rows:
            row["checkpoint"] = str(path)
            row["logged_by"] = "gankit eval"
            row["batchnorm"] = loaded.batchnorm  # G sampled in its run's sampling.batchnorm (gankit.sampling)
        results.append((loaded, rows))
    return results, notices, first, evaluator.skipped if evaluator is not None else {}


def _log_rows(results, recipe, run_dir: Path) -> None:
    """Append the rows to the run's metrics.jsonl and its wandb run (which resumes)."""
    from gankit.loggers.factory import make_loggers

    loggers = make_loggers(recipe, run_dir, job_type="train", resumed=True, backfill=True)
    try:
        for loaded, rows in results:
            loggers.log_metrics(loaded.checkpoint.get("step"), rows)
    finally:
        loggers.finish(None)  # the run's own end row stays its status


def _print_table(rows, step=None, checkpoint=None) -> None:
    from gankit.eval.rows import interval_cost, shown_name, value_text

    if checkpoint is not None:
        print(f"{checkpoint} (step {step}):")
    for row in rows:
        print(f"{shown_name(row):<22} {value_text(row, 6)}")
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
            origin = f"{row['weights_origin']}, " if row.get("weights_origin") else ""
            content = row.get("weights_content_sha256")
            digest = f"content sha256 {content[:16]}..." if content else f"sha256 {row['weights_sha256'][:16]}..."
            print(f"{row['feature_extractor']}: weights {origin}{digest}, "
                  f"input {row['input_resolution']}, resize {row['resize']}, antialias {row['antialias']}")
        ci = next((row for row in rows if row.get("ci_low") is not None), None)
        if ci is not None:
            print(f"[intervals]: 95% {ci['ci_method']}, {ci['ci_resamples']} resamples, seed {ci['ci_seed']} "
                  f"(stream '{ci['ci_stream']}'); {interval_cost(rows)}")


def run(args) -> int:
    from gankit.core.errors import GankitError
    from gankit.core.plugins import get_host
    from gankit.training.distributed import join_world

    def log(message: str) -> None:
        if world.is_main:
            print(message, file=sys.stderr)

    if args.run and (args.real or args.fake):
        raise GankitError("give a run directory (or checkpoint) or --real/--fake folders, not both")
    if (args.log or args.all_checkpoints or args.checkpoint) and not (args.run or args.checkpoint):
        raise GankitError("--log, --checkpoint and --all-checkpoints measure a run: give its directory")
    if args.batchnorm and not (args.run or args.checkpoint):
        raise GankitError("--batchnorm sets how a run's generator samples: give its directory (folders hold images)")
    host = get_host()
    world, device = join_world(args.device)
    try:
        if device is None:
            from gankit.recipe.build import resolve_device

            device = resolve_device(args.device)
        if args.run or args.checkpoint:
            results, notices, recipe, skipped = _checkpoints(args, device, log, host, world)
        else:
            (results, notices, skipped), recipe = _folders(args, device, log, host), None
        if not world.is_main:
            return 0
        if args.log:
            run_dir = Path(args.run) if args.run and Path(args.run).is_dir() else \
                Path(results[0][0].path).resolve().parent.parent
            _log_rows(results, recipe, run_dir)
    finally:
        world.leave()
    all_rows = [row for _, rows in results for row in rows]
    for note in dict.fromkeys(n for row in all_rows for n in row.get("notes", [])):
        log(f"note: {note}")
    if args.json:
        last = results[-1][1]
        out = {
            "values": {row["metric"]: row["value"] for row in last},
            "std": {row["metric"]: row["std"] for row in last if row.get("std") is not None},
            "rows": all_rows,
            "notices": notices,
            "skipped": skipped,
        }
        print(json.dumps(out, default=str))
    else:
        for loaded, rows in results:
            many = len(results) > 1
            _print_table(rows, loaded.checkpoint.get("step") if many else None, loaded.path if many else None)
        if args.log:
            log(f"logged {len(all_rows)} rows to {run_dir / 'metrics.jsonl'}")
    return 0
