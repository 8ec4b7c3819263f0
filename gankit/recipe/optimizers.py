"""The torch optimizers a recipe can name in ``optim.g`` / ``optim.d``."""

import torch

OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
}


def build_optimizer(spec, params):
    """``spec`` is an :class:`gankit.recipe.schema.OptimizerSpec`."""
    return OPTIMIZERS[spec.name](params, lr=spec.lr, **spec.args)
