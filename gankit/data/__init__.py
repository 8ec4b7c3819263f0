"""Datasets: builders registered under ``datasets``, the loader, the resumable sampler.

A dataset builder is called with ``image_size`` and ``channels`` (from the
recipe's ``data`` section) plus its own keyword arguments (``root``,
``split``, ...). It checks its files (missing folder, wrong layout: a
:class:`gankit.errors.DataError` naming the path and the expected layout)
and returns a map-style dataset whose items are ``(image, label)``: a float
tensor ``channels x image_size x image_size`` in [-1, 1] and an int label
(-1 when the dataset has none), or a :class:`BadImage` for an unreadable file.
"""

from gankit.data.common import BadImage


def register_datasets(datasets) -> None:
    """Register the built-in datasets into the ``datasets`` registry."""
    from gankit.data import celeba, cifar10, digits, imagefolder, mnist

    datasets.register("digits", digits.digits)
    datasets.register("imagefolder", imagefolder.imagefolder)
    datasets.register("celeba", celeba.celeba)
    datasets.register("mnist", mnist.mnist)
    datasets.register("cifar10", cifar10.cifar10)


__all__ = ["BadImage", "register_datasets"]
