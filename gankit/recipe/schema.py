"""The recipe schema: every key a recipe may hold, its type and its default.

Component sections (``data``, ``generator``, ``discriminator``, ``loss``,
``optim.g``/``optim.d``) hold a ``name`` plus that component's own keyword
arguments; those arguments are checked against the component's signature in
:mod:`gankit.recipe.components`, not here.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pathlib import Path

from pydantic import (BaseModel, ConfigDict, Field, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt,
                      PrivateAttr)


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
    batch_size: PositiveInt = 128  # per process: under torchrun each step sees batch_size × world size images
    workers: NonNegativeInt = 2  # DataLoader worker processes
    drop_last: bool = False  # the tutorial keeps the last, smaller batch
    on_bad_image: Literal["error", "skip"] = "error"  # unreadable images: stop naming the file, or skip and count
    # decode every image once into a memory-mapped uint8 file (reused by later runs, rebuilt when the
    # files change) and batch from it: no per-image decoding and resizing each epoch
    cache: bool = False
    cache_dir: str | None = None  # where data.cache files go; default: $GANKIT_CACHE_DIR, then ~/.cache/gankit


class ScheduleSpec(Component):
    """A schedule (``name`` + its arguments) and the hyperparameter it sets before each step."""

    # what it sets: optim.g.lr, optim.d.betas.1, regularizers.0.gamma, train.ema.half_life_kimg, augment.p,
    # or a list of them (one schedule for both players' learning rates)
    target: str | list[str]

    @property
    def targets(self) -> list[str]:
        return [self.target] if isinstance(self.target, str) else list(self.target)


class OptimizerSpec(Component):
    """A torch optimizer by name (adam, adamw, sgd, rmsprop) and its arguments."""

    name: str = "adam"
    lr: PositiveFloat = 2e-4


def _tutorial_adam() -> OptimizerSpec:
    return OptimizerSpec(name="adam", lr=2e-4, betas=[0.5, 0.999])


class OptimSection(Section):
    g: OptimizerSpec = Field(default_factory=_tutorial_adam)  # the generator's optimizer
    d: OptimizerSpec = Field(default_factory=_tutorial_adam)  # the discriminator's optimizer


class EMASection(Section):
    decay: float = Field(0.999, ge=0, lt=1)  # weight of the old average per update
    # The average's half-life in thousands of images (StyleGAN2-ADA's ema_kimg, R3GAN's EMA length); set, it
    # replaces decay, so the average spans the same images whatever the batch size.
    half_life_kimg: NonNegativeFloat | None = None
    rampup: PositiveFloat | None = 0.05  # half-life at most this fraction of the images seen (StyleGAN2-ADA); null: none


class TrainSection(Section):
    steps: PositiveInt | None = None  # total iterations; the run stops at steps or epochs, whichever first
    epochs: PositiveInt | None = None  # total passes over the data
    sample_every: PositiveInt | None = 500  # fixed-noise grid every N steps (and at the end)
    num_samples: PositiveInt = 64  # images in the fixed-noise grid
    checkpoint_every: PositiveInt | None = 500  # checkpoints/last.pt every N steps (and at the end)
    # also keep checkpoints/step_XXXXXXX.pt every N steps (gankit eval --all-checkpoints measures them later)
    keep_every: PositiveInt | None = None
    log_every: PositiveInt = 50  # a metrics.jsonl row every N steps
    d_steps: PositiveInt = 1  # D updates per G update, each on a fresh real batch; train.steps counts G updates
    ema: EMASection | None = None  # an exponential moving average of G's weights, used for samples and evaluation
    # Speed. fp16 adds a gradient scaler per network; bf16 needs none (see benchmarks/README.md for what helps where).
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"  # autocast dtype of G's and D's forward passes and losses
    channels_last: bool = False  # NHWC memory layout for G, D and the real batches (faster convolutions on GPUs)
    compile: bool = False  # torch.compile G and D (the first steps pay the compilation)
    deterministic: bool = False  # deterministic kernels only (torch.use_deterministic_algorithms); slower on CUDA
    # torchrun: convert BatchNorm to SyncBatchNorm, so batch statistics span all ranks' batches (CUDA only)
    sync_batchnorm: bool = False


class HealthSection(Section):
    """Non-finite values and training-health alerts (see :mod:`gankit.training.health`); None turns an alert off."""

    # A non-finite loss or gradient: stop (exit code 3; the last good checkpoint is kept, never overwritten
    # by the bad state), or skip that update with a counted warning.
    on_nonfinite: Literal["stop", "skip"] = "stop"
    max_skips_in_a_row: PositiveInt = 20  # skip: this many skipped steps in a row stop the run anyway
    # D dominance: D(x) - D(G(z)) above this for d_dominance_window steps in a row (a healthy DCGAN
    # passes 0.9 for about 100 steps early on, while D learns faster than G).
    d_dominance_gap: Annotated[float, Field(gt=0, le=1)] | None = 0.9
    d_dominance_window: PositiveInt = 300  # steps in a row
    vanishing_grad_g: NonNegativeFloat | None = 1e-3  # G's gradient norm below this ... (healthy DCGAN: 1 to 50)
    vanishing_window: PositiveInt = 100  # ... for this many steps in a row
    # Mode collapse: the fixed-noise grid's diversity (mean pairwise pixel distance) below this fraction
    # of real images'; a collapsed G scores near 0, a healthy one 0.3 to 0.9.
    collapse_ratio: Annotated[float, Field(gt=0, lt=1)] | None = 0.2
    collapse_after: NonNegativeInt = 250  # grids before this step are not judged: early generators draw similar blobs
    fid_regression: PositiveFloat | None = 0.3  # FID more than this fraction above its best so far


class EvalSection(Section):
    """FID/IS/KID/PRDC/SWD during and after training (see :mod:`gankit.eval`)."""

    every: PositiveInt | None = None  # evaluate every N steps (and at the end) when metrics are listed
    # metrics registry entries: a name (fid, fid_per_class, fd_dinov2, is, kid, prdc, swd) or
    # {name: kid, subset_size: 500} with its arguments
    metrics: list[str | Component] = Field(default_factory=list)
    # the metric checkpoints/best.pt follows (one of metrics, or a value of one: prdc/recall), in its own
    # direction; null: the first metric measured
    best_metric: str | None = None
    num_fake: int = Field(10_000, ge=2)  # generated images per evaluation
    num_real: int = Field(10_000, ge=2)  # real images from the recipe's dataset (all of them if it has fewer)
    feature_extractor: str = "inception"  # feature_extractors registry name used by FID, KID and PRDC (IS: Inception)
    inception_weights: str | None = None  # weights file; default: $GANKIT_INCEPTION_WEIGHTS, then torch's hub cache
    # DINOv2 ViT-L/14 weights for fd_dinov2 (timm's model.safetensors or Meta's .pth); default:
    # $GANKIT_DINOV2_WEIGHTS, then the Hugging Face hub cache, then timm's hub download
    dinov2_weights: str | None = None
    # No Inception weights (neither found nor downloadable): skip the metrics that need them and train anyway,
    # naming them and the command that fills them in later; or refuse to start.
    on_missing_weights: Literal["refuse", "skip"] = "skip"
    cache_dir: str | None = None  # reference-features cache; default: $GANKIT_CACHE_DIR, then ~/.cache/gankit
    # Defaults for metrics listed by bare name (a {name: kid, subset_size: ...} entry sets its own):
    kid_subset_size: PositiveInt = 1000  # images per KID subset (fewer when fewer images are there; said so)
    kid_subsets: PositiveInt = 100  # KID subsets; value = mean, std over them
    is_splits: PositiveInt = 10  # Inception Score splits; value = mean, std over them
    prdc_k: PositiveInt = 5  # nearest neighbours for precision/recall/density/coverage (Naeem et al.: 5)
    # FID, KID, FD-DINOv2, per-class FID: resamples of the real and generated features for each row's 95% bootstrap
    # interval (seeded from eval.seed); 0: no interval
    bootstrap_resamples: NonNegativeInt = 50
    batch_size: PositiveInt = 64  # images per generator call and extractor pass
    seed: int = 0  # evaluation's own random streams: latents, real subset, KID subsets, SWD patches


class SamplingSection(Section):
    """How G makes images: its grids, evaluations, ``gankit sample``, exports (gankit.sampling.batchnorm)."""

    # BatchNorm in G: standing (statistics re-estimated over standing_batches batches of z once, at the end of
    # training, and stored in the checkpoint; BigGAN), running (those training accumulated: eval mode), or batch
    # (each batch's own, as the PyTorch DCGAN tutorial samples: an image then depends on the rest of its batch)
    batchnorm: Literal["running", "standing", "batch"] = "standing"
    standing_batches: PositiveInt = 16  # batches of z the standing statistics average (BigGAN: 16)
    standing_batch_size: int = Field(64, ge=2)  # latents per such batch


class WandbSection(Section):
    """Weights & Biases: one wandb run per gankit run, its files under <run dir>/wandb/."""

    # auto: online when an API key is configured, else offline (upload later with `wandb sync`);
    # the WANDB_MODE environment variable, when set, wins over this.
    mode: Literal["auto", "online", "offline", "disabled"] = "auto"
    project: str = "gankit"  # the wandb project the run goes to
    group: str | None = None  # the wandb run group; None: the recipe's name (gankit sweep: the sweep's name)
    entity: str | None = None  # the wandb user or team; None: the account's default entity
    tags: list[str] = Field(default_factory=list)  # tags on the wandb run, to filter the run table
    notes: str | None = None  # a free-text description shown with the run
    log_checkpoint: bool = False  # upload checkpoints/last.pt as a model artifact when the run ends
    init_timeout: PositiveFloat = 30.0  # seconds to wait for wandb to start online before falling back to offline


class LogSection(Section):
    progress: Literal["auto", "bar", "lines", "none"] = "auto"  # auto: a bar on a terminal, lines otherwise (not "off": YAML reads that as false)
    wandb: WandbSection = Field(default_factory=WandbSection)  # Weights & Biases logging


class Recipe(Section):
    """One complete run: data, models, loss, optimizers, schedule, evaluation, logging."""

    name: str  # runs go to <out_dir>/<name>/<run id>/
    seed: int = 0  # seeds model initialisation, noise and data order
    out_dir: str = "runs"
    device: str = "auto"  # auto (CUDA when available), cpu, cuda, cuda:N
    plugins: list[str] = Field(default_factory=list)  # extra plugin modules or .py files for this run
    sweep: str | None = None  # the sweep this run belongs to (set by gankit sweep; in the wandb config)
    # start a new run from another run's weights (a run directory or checkpoint): fine-tuning, new learning
    # rates; the optimizers start fresh
    init_from: str | None = None
    init_from_parts: list[Literal["generator", "discriminator"]] = Field(
        default_factory=lambda: ["generator", "discriminator"])
    data: DataSection = Field(default_factory=DataSection)
    generator: Component
    discriminator: Component
    loss: Component = Field(default_factory=lambda: Component(name="bce"))
    regularizers: list[Component] = Field(default_factory=list)  # added to D's loss: gp, r1 (name + arguments)
    augment: Component | None = None  # differentiable augmentation of D's inputs, real and fake (diffaugment, ada)
    # hyperparameters as functions of the real images seen: [{target: optim.g.lr, name: cosine, ...}, ...]
    schedules: list[ScheduleSpec] = Field(default_factory=list)
    optim: OptimSection = Field(default_factory=OptimSection)
    train: TrainSection = Field(default_factory=TrainSection)
    health: HealthSection = Field(default_factory=HealthSection)  # non-finite values and alerts
    eval: EvalSection = Field(default_factory=EvalSection)
    sampling: SamplingSection = Field(default_factory=SamplingSection)  # BatchNorm when G samples
    log: LogSection = Field(default_factory=LogSection)
    # Written by gankit into a run's recipe.yaml (versions, overrides); ignored when read back.
    gankit: dict[str, Any] | None = None
    # The folder relative .py plugins were found in (the recipe file's); not a key.
    _source_dir: Path | None = PrivateAttr(default=None)


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


def default_of(path: str) -> Any:
    """The schema's default at a dotted path (``loss.name`` -> "bce"), None when the key is required."""
    first, *rest = path.split(".")
    field = Recipe.model_fields[first]
    if field.is_required():
        return None
    value = field.get_default(call_default_factory=True)
    for part in rest:
        value = getattr(value, part, None)
    return value
