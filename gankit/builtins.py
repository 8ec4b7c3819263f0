"""gankit's own components, registered through the same hook as any plugin."""

from gankit.hookspecs import hookimpl


@hookimpl
def gankit_register(registry):
    from gankit import losses
    from gankit.data import register_datasets

    registry("losses").register("bce", losses.BCELoss)
    register_datasets(registry("datasets"))
