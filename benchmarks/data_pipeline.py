"""The tutorial's data pipeline (ImageFolder + PIL, every image decoded and resized every epoch)
vs gankit's cached pipeline (decoded once into a uint8 file, batches gathered from it), images/s.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/data_pipeline.py
    .venv/bin/python benchmarks/data_pipeline.py --root ../shared/data/celeba_sample --batches 20 --rounds 5

Both contenders deliver float batches (batch x 3 x 64 x 64 in [-1, 1], the same
values) on the CPU in a shuffled order, and restart their epoch when it ends.
The tutorial's is its own code: torchvision's ImageFolder with Resize,
CenterCrop, ToTensor, Normalize and a DataLoader with --workers processes.
gankit's is ``cache_dataset`` + ``CachedBatches``; its one-time build is
timed separately and not counted in the rounds. Rounds alternate (tutorial,
gankit, tutorial, ...) so that a busy neighbour slows both alike; each round
draws --batches batches after a warm-up. The tutorial's workers keep decoding
ahead (2 batches each) between its calls: each of its rounds first takes those
untimed, and gankit's round starts after they have finished, so that neither
gets the other's CPU time. Prints each round and the median
ratio gankit / tutorial images/s (target: >= 10).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


class Tutorial:
    """The DCGAN tutorial's dataset and loader, as written there."""

    def __init__(self, root: Path, image_size: int, batch_size: int, workers: int):
        import torchvision.datasets as dset
        import torchvision.transforms as transforms

        dataset = dset.ImageFolder(root=str(root), transform=transforms.Compose([
            transforms.Resize(image_size),
            transforms.CenterCrop(image_size),
            transforms.ToTensor(),
            transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
        ]))
        self.loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers)
        self.batches = iter(())
        self.prefetched = 2 * workers  # DataLoader's prefetch_factor (2) batches per worker
        self.batch_size = batch_size

    def before_round(self) -> None:
        """Take the batches the workers prefetched between rounds (untimed): time only steady decoding."""
        self.draw(self.prefetched)

    def after_round(self, rate: float) -> None:
        """Let the workers finish prefetching now, so they do not take the CPU during gankit's round."""
        if self.prefetched:
            time.sleep(min(10.0, 1.5 * self.prefetched * self.batch_size / rate))

    def draw(self, n: int) -> int:
        images = 0
        for _ in range(n):
            try:
                data, _labels = next(self.batches)
            except StopIteration:  # a new epoch, as the tutorial's `for i, data in enumerate(dataloader)`
                self.batches = iter(self.loader)
                data, _labels = next(self.batches)
            images += data.shape[0]
        return images


class Gankit:
    """gankit's cached pipeline: the cache file (built once) and batches gathered from it."""

    def __init__(self, root: Path, image_size: int, batch_size: int, workers: int, cache_dir: Path):
        from gankit.data.cache import cache_dataset
        from gankit.data.cached_loader import CachedBatches
        from gankit.data.files import imagefolder
        from gankit.data.sampler import ResumableSampler

        t0 = time.perf_counter()
        self.cache = cache_dataset(imagefolder(str(root), image_size, 3),
                                   {"dataset": "imagefolder", "root": str(root.resolve()), "image_size": image_size,
                                    "channels": 3}, cache_dir, workers=workers)
        self.build_s = time.perf_counter() - t0
        self.sampler = ResumableSampler(len(self.cache), seed=0)
        self.loader = CachedBatches(self.cache, batch_size, self.sampler, "cpu")
        self.epoch = 0
        self.batches = iter(self.loader)

    def before_round(self) -> None:
        pass

    def after_round(self, rate: float) -> None:
        pass

    def draw(self, n: int) -> int:
        images = 0
        for _ in range(n):
            try:
                data, _labels, _bad = next(self.batches)
            except StopIteration:
                self.epoch += 1
                self.sampler.set_position(self.epoch, 0)
                self.batches = iter(self.loader)
                data, _labels, _bad = next(self.batches)
            images += data.shape[0]
        return images


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", type=Path, default=SHARED / "celeba_sample", help="an ImageFolder root (the tutorial's)")
    p.add_argument("--image-size", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--workers", type=int, default=2, help="the tutorial's DataLoader workers (and gankit's build)")
    p.add_argument("--batches", type=int, default=10, help="timed batches per contender per round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--cache-dir", type=Path, default=None, help="reuse a cache folder (default: a temporary one)")
    args = p.parse_args()
    if not args.root.is_dir():
        print(f"error: no image folder at {args.root} (the shared CelebA sample sits next to the repository "
              "as ../shared/data/celeba_sample); pass --root", file=sys.stderr)
        return 2
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        gankit = Gankit(args.root, args.image_size, args.batch_size, args.workers, args.cache_dir or Path(tmp))
        tutorial = Tutorial(args.root, args.image_size, args.batch_size, args.workers)
        contenders = {"tutorial": tutorial, "gankit": gankit}
        n = len(gankit.cache)
        how = "built" if gankit.cache.built else "found"
        print(f"gankit cache {how} in {gankit.build_s:.1f}s: {n} images, "
              f"{gankit.cache.images.numel() / 2**20:.0f} MiB at {gankit.cache.path}")
        for c in contenders.values():
            c.draw(2)  # warm-up: the tutorial's workers start, the cache file's pages are read
        rates: dict[str, list[float]] = {name: [] for name in contenders}
        for r in range(args.rounds):
            for name, c in contenders.items():
                c.before_round()
                t0 = time.perf_counter()
                images = c.draw(args.batches)
                rates[name].append(images / (time.perf_counter() - t0))
                c.after_round(rates[name][-1])
            print(f"round {r + 1}: tutorial {rates['tutorial'][-1]:9.0f} img/s   gankit {rates['gankit'][-1]:9.0f} img/s"
                  f"   ratio {rates['gankit'][-1] / rates['tutorial'][-1]:6.1f}")
    ratios = [g / t for g, t in zip(rates["gankit"], rates["tutorial"])]
    tut = statistics.median(rates["tutorial"])
    print(f"\n{args.root.name} {args.image_size}x{args.image_size}, batch {args.batch_size}, {args.workers} workers, "
          f"{args.batches} batches x {args.rounds} rounds, {torch.get_num_threads()} torch threads")
    print(f"tutorial {tut:.0f} img/s   gankit {statistics.median(rates['gankit']):.0f} img/s")
    print(f"speed ratio gankit/tutorial (median of rounds): {statistics.median(ratios):.1f}  (target >= 10)")
    if gankit.cache.built:
        print(f"the one-time build ({gankit.build_s:.1f}s) costs {gankit.build_s * tut / n:.2f} epochs "
              "of the tutorial's pipeline")
    return 0


if __name__ == "__main__":
    sys.exit(main())
