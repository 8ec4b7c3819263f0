"""FD-DINOv2's extractor against Inception's, per image, and the cost of the 95% bootstrap interval at 10,000 images.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/eval_metrics.py
    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/eval_metrics.py --images 8 --n 10000 --resamples 50

In one run, on this machine's CPU (or --device):

1. per-image cost of the two extractors on the same uint8 images (64 x 64 CelebA-like noise, each
   extractor's own resize): torch-fidelity's InceptionV3 (299 px) and DINOv2 ViT-L/14 (224 px, PIL
   resize, timm), both with generated weights of the real shapes (the cost does not depend on the values);
2. the interval's cost at ``--n`` real and ``--n`` generated features (random, the right dimension):
   FID's and KID's (2048-d, Inception) and FD-DINOv2's (1024-d), each ``--resamples`` resamples, against
   the feature pass of the same ``--n`` generated images through the extractor (per-image cost x n; the
   real side is usually cached). Generated features are not needed by anything measured here, so the
   feature pass is extrapolated from (1), said so in the output;
3. per-class FID's interval (``--classes`` classes, ``--n`` / classes images each side per class,
   2048-d, resampled within each class) against the same Inception feature pass.

``--per-image-ms INCEPTION DINOV2`` skips (1) and uses figures from an earlier run of (1) instead;
``--intervals`` picks which of (2) and (3) to time.
"""

from __future__ import annotations

import argparse
import time

import torch


def per_image(extractor, images: torch.Tensor, rounds: int = 2) -> float:
    """Seconds per image of ``extractor.extract`` (the best of ``rounds`` after a warm-up batch)."""
    extractor.extract(images[:1])
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        extractor.extract(images)
        best = min(best, time.perf_counter() - started)
    return best / images.shape[0]


def extractors(device: torch.device):
    from gankit.eval import dinov2
    from gankit.eval.extractors import INCEPTION_RESIZE, INCEPTION_RESOLUTION, Extractor, inception_module

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        inception = Extractor("inception", inception_module(None, ("2048",)), device, weights_sha256="generated",
                              input_resolution=INCEPTION_RESOLUTION, resize=INCEPTION_RESIZE, rgb=True)
        vit = dinov2.vit_large(None)  # timm's random initialisation, the 224 px grid
    return inception, Extractor("dinov2_vitl14", dinov2.DINOv2Features(vit), device, weights_sha256="generated",
                                input_resolution=224, resize=dinov2.RESIZE, rgb=True)


def interval_seconds(kind: str, n: int, d: int, resamples: int) -> float:
    from gankit.eval import bootstrap

    g = torch.Generator().manual_seed(0)
    real = torch.randn(n, d, generator=g).relu()
    fake = (torch.randn(n, d, generator=g) + 0.1).relu()
    started = time.perf_counter()
    if kind == "frechet":
        bootstrap.frechet_interval(real, fake, resamples, seed=0)
    elif kind.startswith("per_class"):  # "per_class:C": C classes of n / C images each side
        c = int(kind.split(":")[1])
        groups = list(zip(real.chunk(c), fake.chunk(c)))
        bootstrap.frechet_resamples_by_class(groups, resamples, seed=0)
    else:
        bootstrap.mmd_interval(real, fake, resamples, seed=0)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8, help="images per extractor timing")
    parser.add_argument("--n", type=int, default=10_000, help="real and generated features for the interval")
    parser.add_argument("--resamples", type=int, default=50)
    parser.add_argument("--classes", type=int, default=10, help="classes for per-class FID's interval")
    parser.add_argument("--per-image-ms", type=float, nargs=2, metavar=("INCEPTION", "DINOV2"),
                        help="skip the extractor timing; use these per-image costs (ms) from an earlier run")
    parser.add_argument("--intervals", default="fid,kid,fd_dinov2,fid_per_class",
                        help="which intervals to time (comma-separated)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    wanted = set(args.intervals.split(","))
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}")

    if args.per_image_ms:
        s_inception, s_dinov2 = (ms / 1e3 for ms in args.per_image_ms)
        print(f"per image (given, from an earlier run): inception {args.per_image_ms[0]:.1f} ms, "
              f"dinov2_vitl14 {args.per_image_ms[1]:.1f} ms")
    else:
        images = torch.randint(0, 256, (args.images, 3, 64, 64), dtype=torch.uint8,
                               generator=torch.Generator().manual_seed(1))
        inception, vit = extractors(device)
        s_inception = per_image(inception, images)
        s_dinov2 = per_image(vit, images)
        print(f"per image: inception {1e3 * s_inception:.1f} ms, dinov2_vitl14 {1e3 * s_dinov2:.1f} ms, "
              f"ratio dinov2/inception {s_dinov2 / s_inception:.2f}x ({args.images} images, 64x64 in)")

    for name, kind, d, pass_s in (("fid", "frechet", 2048, s_inception), ("kid", "mmd", 2048, s_inception),
                                  ("fd_dinov2", "frechet", 1024, s_dinov2),
                                  (f"fid_per_class ({args.classes} classes)", f"per_class:{args.classes}", 2048,
                                   s_inception)):
        if name.split(" ")[0] not in wanted:
            continue
        spent = interval_seconds(kind, args.n, d, args.resamples)
        feature_pass = pass_s * args.n
        print(f"{name} interval: {spent:.1f} s for {args.resamples} resamples of {args.n} + {args.n} {d}-d features; "
              f"the feature pass of {args.n} generated images: {feature_pass:.0f} s (extrapolated from the per-image "
              f"cost above): interval/feature pass {100 * spent / feature_pass:.1f}%")


if __name__ == "__main__":
    main()
