"""The built-in datasets, one per file, each a function declared with ``@component("datasets", name)``:
``digits`` (the quickstart's, inside scikit-learn), ``imagefolder``, ``celeba``, ``mnist``, ``cifar10``."""
