"""The torch optimizers a recipe can name in ``optim.g`` / ``optim.d``."""

import torch

OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
}
# Those with a fused implementation (one kernel for all parameters) on the CPU and CUDA: the same update
# rule, several times faster than torch's default for-each one (the tutorial DCGAN's Adam step: 11 ms
# instead of 45 ms on a 2-core CPU, ~3% of a training step). A recipe's `fused` or `foreach` wins.
FUSED = {"adam", "adamw", "sgd"}
FUSED_DEVICES = {"cpu", "cuda"}


def build_optimizer(spec, params):
    """``spec`` is an :class:`gankit.recipe.schema.OptimizerSpec`."""
    params = list(params)
    kwargs = {"lr": spec.lr, **spec.args}
    if (spec.name in FUSED and "fused" not in kwargs and "foreach" not in kwargs and params
            and all(p.is_floating_point() and p.device.type in FUSED_DEVICES for p in params)):
        kwargs["fused"] = True
    return OPTIMIZERS[spec.name](params, **kwargs)
