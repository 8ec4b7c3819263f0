"""Datasets: builders registered under ``datasets``, the loader, the resumable sampler.

A dataset builder is called with ``image_size`` and ``channels`` (from the
recipe's ``data`` section) plus its own keyword arguments (``root``,
``split``, ...). It checks its files (missing folder, wrong layout: a
:class:`gankit.core.errors.DataError` naming the path and the expected layout)
and returns a map-style dataset whose items are ``(image, label)``: a float
tensor ``channels x image_size x image_size`` in [-1, 1] and an int label
(-1 when the dataset has none), or a :class:`BadImage` for an unreadable file.
The built-in builders live in :mod:`gankit.data.datasets`, one per file.
"""

from gankit.data.common import BadImage

__all__ = ["BadImage"]
