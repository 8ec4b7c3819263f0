"""One rank of a torchrun test run: trains like ``gankit run`` and saves this rank's final state.

    torchrun --nproc_per_node=2 tests/ddp_worker.py RECIPE OUT_PREFIX [--resume RUN_DIR] [key=value ...]

Writes ``OUT_PREFIX.rank<R>.pt`` (G, D, both optimizers, the run directory, how
many DDP wrappers outlived the run) so the test can compare the ranks with each
other and with another run.
"""

import argparse
import gc
import os

import torch

from gankit.recipe import load_recipe
from gankit.training.trainer import Trainer
from gankit.training.state import prepare_resume


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("recipe")
    parser.add_argument("out_prefix")
    parser.add_argument("--resume")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_intermixed_args()
    if args.resume:
        recipe, ckpt, run_dir = prepare_resume(args.resume, args.overrides)
        trainer = Trainer(recipe, overrides=args.overrides, resume=ckpt, run_dir=run_dir)
    else:
        trainer = Trainer(load_recipe(args.recipe, args.overrides), source=args.recipe, overrides=args.overrides)
    run_dir = trainer.run()
    gc.collect()
    # A DDP wrapper alive after the run holds the process group past its destruction: gloo aborts at exit.
    left = sum(isinstance(o, torch.nn.parallel.DistributedDataParallel) for o in gc.get_objects())
    torch.save({"generator": trainer.G.state_dict(), "discriminator": trainer.D.state_dict(),
                "optim_g": trainer.job.players.opt_g.state_dict(), "optim_d": trainer.job.players.opt_d.state_dict(),
                "run_dir": str(run_dir), "step": trainer.step, "ddp_wrappers_left": left},
               f"{args.out_prefix}.rank{os.environ['RANK']}.pt")


if __name__ == "__main__":
    main()
