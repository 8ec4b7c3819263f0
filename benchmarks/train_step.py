"""gankit's DCGAN training loop vs the plain loop of the PyTorch tutorial, same data.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/train_step.py
    .venv/bin/python benchmarks/train_step.py --batch-size 128 --rounds 5 --device cuda

Both contenders train the tutorial's networks (64x64, its only size) on the
same in-memory images with the same batch size. Each round times --steps
training iterations of each contender, after a warm-up, the two back to back
so that a busy neighbour slows both alike, and which goes first alternates
from round to round (a slowdown that builds up within a round does not
always fall on the same one). Prints each round and the median ratio plain
time / gankit time: 1.0 means no framework overhead, above 1.0 gankit is
faster.

gankit's rounds run its Trainer's loop (``Trainer.train_steps``) as a run does:
the non-finite guard on every update, health statistics on the device, and
the last step of each round logged as a run's last step is (a row in
metrics.jsonl, its gradient norms; wandb and the progress display off).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn as nn
import torch.optim as optim
from torch.utils.data import DataLoader, TensorDataset


# -- the plain loop, written as in the tutorial ------------------------------------
class TutorialGenerator(nn.Module):
    def __init__(self, nz, ngf, nc):
        super().__init__()
        self.main = nn.Sequential(
            nn.ConvTranspose2d(nz, ngf * 8, 4, 1, 0, bias=False), nn.BatchNorm2d(ngf * 8), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 8, ngf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 4), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf * 2), nn.ReLU(True),
            nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False), nn.BatchNorm2d(ngf), nn.ReLU(True),
            nn.ConvTranspose2d(ngf, nc, 4, 2, 1, bias=False), nn.Tanh(),
        )

    def forward(self, x):
        return self.main(x)


class TutorialDiscriminator(nn.Module):
    def __init__(self, ndf, nc):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(nc, ndf, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 2), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 4), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 4, ndf * 8, 4, 2, 1, bias=False), nn.BatchNorm2d(ndf * 8), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf * 8, 1, 4, 1, 0, bias=False), nn.Sigmoid(),
        )

    def forward(self, x):
        return self.main(x)


def weights_init(m):  # the tutorial's: gankit's DCGAN starts from the same distribution
    classname = m.__class__.__name__
    if classname.find("Conv") != -1:
        nn.init.normal_(m.weight.data, 0.0, 0.02)
    elif classname.find("BatchNorm") != -1:
        nn.init.normal_(m.weight.data, 1.0, 0.02)
        nn.init.constant_(m.bias.data, 0)


class PlainLoop:
    def __init__(self, images, batch_size, device, nz=100):
        self.device, self.nz = device, nz
        self.netG = TutorialGenerator(nz, 64, 3).to(device)
        self.netG.apply(weights_init)
        self.netD = TutorialDiscriminator(64, 3).to(device)
        self.netD.apply(weights_init)
        self.criterion = nn.BCELoss()
        self.optimizerD = optim.Adam(self.netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.optimizerG = optim.Adam(self.netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.loader = DataLoader(TensorDataset(images), batch_size=batch_size, shuffle=True)
        self.batches = iter(())

    def train(self, steps):
        for _ in range(steps):
            try:
                (data,) = next(self.batches)
            except StopIteration:
                self.batches = iter(self.loader)
                (data,) = next(self.batches)
            # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))
            self.netD.zero_grad()
            real_cpu = data.to(self.device)
            b_size = real_cpu.size(0)
            label = torch.full((b_size,), 1.0, dtype=torch.float, device=self.device)
            output = self.netD(real_cpu).view(-1)
            errD_real = self.criterion(output, label)
            errD_real.backward()
            noise = torch.randn(b_size, self.nz, 1, 1, device=self.device)
            fake = self.netG(noise)
            label.fill_(0.0)
            output = self.netD(fake.detach()).view(-1)
            errD_fake = self.criterion(output, label)
            errD_fake.backward()
            self.optimizerD.step()
            # (2) Update G network: maximize log(D(G(z)))
            self.netG.zero_grad()
            label.fill_(1.0)
            output = self.netD(fake).view(-1)
            errG = self.criterion(output, label)
            errG.backward()
            self.optimizerG.step()
        errG.item()  # wait for the device, as the tutorial's logging does


# -- gankit's loop -------------------------------------------------------------------
def bench_trainer(images, out_dir, device, batch_size, name="bench", generator=None, discriminator=None, **train):
    """A set-up gankit Trainer on ``images`` (in memory), ready for ``_train``: no grids, checkpoints,
    progress or wandb; ``train`` adds ``train.*`` keys; the models default to the tutorial's DCGAN."""
    import gankit
    from gankit.recipe import validate
    from gankit.training.trainer import Trainer

    datasets = gankit.registry("datasets")
    if "benchmark_images" not in datasets:
        datasets.register("benchmark_images", lambda image_size, channels: _Labelled(images))
    recipe = validate({
        "name": name, "out_dir": out_dir, "device": str(device),
        "data": {"name": "benchmark_images", "image_size": images.shape[-1], "channels": 3,
                 "batch_size": batch_size, "workers": 0},
        "generator": generator or {"name": "dcgan"}, "discriminator": discriminator or {"name": "dcgan"},
        "train": {"steps": 10**9, "sample_every": None, "checkpoint_every": None, "log_every": 50, **train},
        "log": {"progress": "none", "wandb": {"mode": "disabled"}},
    })
    trainer = Trainer(recipe)
    trainer.start()
    return trainer


class GankitLoop:
    def __init__(self, images, batch_size, device, out_dir):
        self.trainer = bench_trainer(images, out_dir, device, batch_size)

    def train(self, steps):
        self.trainer.train_steps(steps)
        if self.trainer.device.type == "cuda":
            torch.cuda.synchronize()


class _Labelled(torch.utils.data.Dataset):
    def __init__(self, images):
        self.images = images

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i], -1


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=3, help="timed iterations per round")
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    import tempfile

    device = torch.device(args.device)
    torch.manual_seed(0)
    size = 64  # the tutorial's networks are built for 64x64 (no --image-size: another size fails in D)
    images = torch.rand(args.batch_size * 8, 3, size, size) * 2 - 1
    with tempfile.TemporaryDirectory() as out_dir:
        contenders = {"plain": PlainLoop(images, args.batch_size, device), "gankit": GankitLoop(images, args.batch_size, device, out_dir)}
        for c in contenders.values():
            c.train(2)  # warm-up
        times = {name: [] for name in contenders}
        for r in range(args.rounds):
            order = list(contenders.items())
            for name, c in order if r % 2 == 0 else order[::-1]:
                t0 = time.perf_counter()
                c.train(args.steps)
                times[name].append(time.perf_counter() - t0)
            ratio = times["plain"][-1] / times["gankit"][-1]
            print(f"round {r + 1}: plain {times['plain'][-1]:.3f}s  gankit {times['gankit'][-1]:.3f}s  ratio {ratio:.3f}")
    ratios = [a / b for a, b in zip(times["plain"], times["gankit"])]
    imgs = args.steps * args.batch_size
    print(f"\n{size}x{size}, batch {args.batch_size}, {device}, {args.steps} steps x {args.rounds} rounds")
    print(f"plain  {imgs / statistics.median(times['plain']):.1f} img/s")
    print(f"gankit {imgs / statistics.median(times['gankit']):.1f} img/s")
    print(f"speed ratio gankit/plain (median of rounds): {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
