"""The recipe schema: every key a recipe may hold, its type and its default.

Component sections (``data``, ``generator``, ``discriminator``, ``loss``,
``optim.g``/``optim.d``) hold a ``name`` plus that component's own keyword
arguments; those arguments are checked against the component's signature in
:mod:`gankit.recipe.components`, not here.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, PositiveFloat, PositiveInt


class Section(BaseModel):
    """A fixed set of keys: anything else is an unknown-key error."""

    model_config = ConfigDict(extra="forbid")


class Component(BaseModel):
    """``name`` plus the component's own arguments (checked against its signature)."""

    model_config = ConfigDict(extra="allow")

    name: str

    @property
    def args(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class DataSection(Component):
    """The dataset (``name`` + its arguments such as ``root``) and how it is batched."""

    name: str = "digits"
    image_size: PositiveInt = 64  # images are resized and centre-cropped to this size
    channels: Literal[1, 3] = 3  # grey, palette and RGBA images are converted to this
    batch_size: PositiveInt = 128  # per process
    workers: NonNegativeInt = 2  # DataLoader worker processes
    drop_last: bool = False  # the tutorial keeps the last, smaller batch
    on_bad_image: Literal["error", "skip"] = "error"  # unreadable images: stop naming the file, or skip and count


class OptimizerSpec(Component):
    """A torch optimizer by name (adam, adamw, sgd, rmsprop) and its arguments."""

    name: str = "adam"
    lr: PositiveFloat = 2e-4


def _tutorial_adam() -> OptimizerSpec:
    return OptimizerSpec(name="adam", lr=2e-4, betas=[0.5, 0.999])


class OptimSection(Section):
    g: OptimizerSpec = Field(default_factory=_tutorial_adam)  # the generator's optimizer
    d: OptimizerSpec = Field(default_factory=_tutorial_adam)  # the discriminator's optimizer


class TrainSection(Section):
    steps: PositiveInt | None = None  # total iterations; the run stops at steps or epochs, whichever first
    epochs: PositiveInt | None = None  # total passes over the data
    sample_every: PositiveInt | None = 500  # fixed-noise grid every N steps (and at the end)
    num_samples: PositiveInt = 64  # images in the fixed-noise grid
    checkpoint_every: PositiveInt | None = 500  # checkpoints/last.pt every N steps (and at the end)
    log_every: PositiveInt = 50  # a metrics.jsonl row every N steps


class EvalSection(Section):
    every: PositiveInt | None = None  # evaluate every N steps (and at the end) when metrics are listed
    metrics: list[str] = Field(default_factory=list)  # names from the metrics registry


class LogSection(Section):
    progress: Literal["auto", "bar", "lines", "off"] = "auto"  # auto: a bar on a terminal, lines otherwise


class Recipe(Section):
    """One complete run: data, models, loss, optimizers, schedule, evaluation, logging."""

    name: str  # runs go to <out_dir>/<name>/<run id>/
    seed: int = 0  # seeds model initialisation, noise and data order
    out_dir: str = "runs"
    device: str = "auto"  # auto (CUDA when available), cpu, cuda, cuda:N
    plugins: list[str] = Field(default_factory=list)  # extra plugin modules or .py files for this run
    data: DataSection = Field(default_factory=DataSection)
    generator: Component
    discriminator: Component
    loss: Component = Field(default_factory=lambda: Component(name="bce"))
    optim: OptimSection = Field(default_factory=OptimSection)
    train: TrainSection = Field(default_factory=TrainSection)
    eval: EvalSection = Field(default_factory=EvalSection)
    log: LogSection = Field(default_factory=LogSection)
    # Written by gankit into a run's recipe.yaml (versions, overrides); ignored when read back.
    gankit: dict[str, Any] | None = None


def section_fields(path: tuple) -> list[str] | None:
    """The keys allowed at ``path`` (e.g. ``('train',)``), or None when it is free-form."""
    model: type[BaseModel] = Recipe
    for part in path:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        ann = field.annotation if field else None
        if not (isinstance(ann, type) and issubclass(ann, BaseModel)):
            return None
        model = ann
    if model.model_config.get("extra") == "allow":
        return None
    return list(model.model_fields)
