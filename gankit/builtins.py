"""gankit's own components, registered through the same hook as any plugin."""

from gankit.hookspecs import hookimpl


@hookimpl
def gankit_register(registry):
    from gankit import augment, loss_zoo, losses, regularizers
    from gankit.data import register_datasets

    registry("losses").register("bce", losses.BCELoss)
    loss_zoo.register_losses(registry("losses"))
    regularizers.register_regularizers(registry("regularizers"))
    augment.register_augmentations(registry("augmentations"))
    register_datasets(registry("datasets"))
    from gankit.eval import register_metrics; register_metrics(registry)  # noqa: E702
