"""Training on several processes started by torchrun (DistributedDataParallel).

    torchrun --nproc_per_node=4 -m gankit run recipes/dcgan_celeba.yaml
    torchrun --nnodes=2 --node_rank=0 --master_addr=HOST --nproc_per_node=8 -m gankit run RECIPE

torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT in
each process; :func:`join_world` reads them. Without them (a plain ``gankit
run``) the world is one process and nothing here talks to anyone.

What each process does: every rank trains on its own shard of each epoch
(``data.batch_size`` images per rank and step, so a step sees batch_size ×
world size images), G's and D's gradients are averaged by DDP, and rank 0
alone writes the run directory, checkpoints, samples and logs and evaluates.
Small decisions that must agree everywhere (stop on a signal, skip a
non-finite update, a new best FID) go through a CPU (gloo) group, so asking
them never waits for the GPU.
"""

from __future__ import annotations

import datetime
import gc
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist

from gankit.core.errors import GankitError
from gankit.core.processes import env_int

# Rank 0 evaluates alone while the others wait in their next collective: long enough for a 50k-image FID.
TIMEOUT = datetime.timedelta(minutes=60)


@dataclass
class World:
    """This process's place among the run's processes (rank 0 of 1 without torchrun)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    cpu_group: Any = field(default=None, repr=False)  # gloo group for flags and small objects
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))  # where the default group reduces

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier(group=self.cpu_group)

    def max(self, value: int) -> int:
        """The largest of the ranks' ``value``, on every rank."""
        if not self.distributed:
            return value
        t = torch.tensor([value], dtype=torch.int64)
        dist.all_reduce(t, op=dist.ReduceOp.MAX, group=self.cpu_group)
        return int(t.item())

    def any(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on at least one."""
        return bool(self.max(int(bool(flag))))

    def all(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on every rank."""
        return not self.any(not flag)

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if not self.distributed:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0, group=self.cpu_group)
        return box[0]

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order, on every rank."""
        if not self.distributed:
            return [obj]
        out: list[Any] = [None] * self.size
        dist.all_gather_object(out, obj, group=self.cpu_group)
        return out

    def mean(self, values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Each scalar averaged over the ranks (one collective for all of them)."""
        if not self.distributed or not values:
            return values
        keys = sorted(values)
        stacked = torch.stack([torch.as_tensor(values[k]).detach().float().reshape(()).to(self.device) for k in keys])
        dist.all_reduce(stacked)  # the default group: on the GPU under NCCL, where the values are
        stacked /= self.size
        return dict(zip(keys, stacked.unbind()))

    def leave(self) -> None:
        """Leave torchrun's process group, once nothing else holds it (DDP wrappers included).

        A group that outlives ``destroy_process_group`` is destroyed at
        interpreter exit, and gloo then aborts the process ("terminate called
        without an active exception") when its peer is still alive: 5 of 30
        two-rank runs did, none of 30 with the reference dropped first.
        """
        if self.distributed and dist.is_initialized():
            self.cpu_group = None
            gc.collect()  # wrappers let go in reference cycles are freed now, not at exit
            dist.destroy_process_group()


def launched_by_torchrun() -> bool:
    return env_int("WORLD_SIZE", 1) > 1


def resume_command(run_dir) -> str:
    """The command that continues ``run_dir`` with this process's launcher (torchrun's world size kept)."""
    if not launched_by_torchrun():
        return f"gankit run --resume {run_dir}"
    size = env_int("WORLD_SIZE", 1)
    per_node = env_int("LOCAL_WORLD_SIZE", size)
    nodes = f"--nnodes={size // per_node} " if per_node < size else ""
    return f"torchrun {nodes}--nproc_per_node={per_node} -m gankit run --resume {run_dir}"


def join_world(device_setting: str) -> tuple[World, torch.device | None]:
    """Join torchrun's process group; returns the world and this rank's device (None: decide as usual).

    Under torchrun with CUDA each rank uses ``cuda:LOCAL_RANK`` and NCCL;
    on the CPU, gloo.
    """
    size = env_int("WORLD_SIZE", 1)
    if size <= 1:
        return World(), None
    rank, local_rank = env_int("RANK", 0), env_int("LOCAL_RANK", 0)
    if device_setting not in ("auto", "cpu", "cuda"):
        raise GankitError(f"device: '{device_setting}' pins one device, but under torchrun each process uses its "
                          "own (cuda:LOCAL_RANK); set device: auto, cuda or cpu")
    use_cuda = device_setting == "cuda" or (device_setting == "auto" and torch.cuda.is_available())
    if use_cuda:
        if not torch.cuda.is_available():
            raise GankitError("device: 'cuda' asked for, but CUDA is not available here; use device=cpu or auto")
        if local_rank >= torch.cuda.device_count():
            raise GankitError(f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} GPUs here; "
                              "set torchrun --nproc_per_node to at most the number of GPUs")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    backend = "nccl" if use_cuda else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=TIMEOUT, device_id=device if use_cuda else None)
    cpu_group = dist.new_group(backend="gloo", timeout=TIMEOUT) if backend != "gloo" else dist.group.WORLD
    return World(rank, size, local_rank, cpu_group, device), device


def wrap(module: torch.nn.Module, device: torch.device, world: World, sync_batchnorm: bool) -> torch.nn.Module:
    """``module`` for training under DDP (the module itself in a one-process world).

    The returned wrapper shares ``module``'s parameters; checkpoints, samples
    and evaluation keep using ``module`` (its state_dict keys unprefixed).
    """
    if not world.distributed:
        return module
    from torch.nn.parallel import DistributedDataParallel

    if sync_batchnorm:
        if device.type != "cuda":
            raise GankitError("train.sync_batchnorm: torch's SyncBatchNorm works on CUDA only; set "
                              "train.sync_batchnorm=false on the CPU (each rank then normalises with its own batch)")
        module = torch.nn.SyncBatchNorm.convert_sync_batchnorm(module)  # in place: the caller's module changes
    class Wrapped(DistributedDataParallel):
        """DDP that also answers for the module's own attributes (``nz``, ``num_classes``, ...)."""

        def __getattr__(self, name: str):
            try:
                return super().__getattr__(name)
            except AttributeError:
                return getattr(self.module, name)

    return Wrapped(module, device_ids=[device.index] if device.type == "cuda" else None)


def unwrap(module: torch.nn.Module) -> torch.nn.Module:
    """The module a DDP wrapper trains (``module`` itself when it is not wrapped)."""
    from torch.nn.parallel import DistributedDataParallel

    return module.module if isinstance(module, DistributedDataParallel) else module

