"""Evaluation: FID, IS, KID (torchmetrics, on torch-fidelity's InceptionV3), PRDC and SWD.

Modules, one job each:

- :mod:`~gankit.eval.weights`: find, download and check the Inception weights;
- :mod:`~gankit.eval.extractors`: the ``feature_extractors`` registry's extractors;
- :mod:`~gankit.eval.images`: uint8 quantisation, image folders, batching;
- :mod:`~gankit.eval.metrics`: the ``metrics`` registry's entries, one per file;
- :mod:`~gankit.eval.cache`: reference features on disk, computed once;
- :mod:`~gankit.eval.engine`: one evaluation, one extractor pass per image;
- :mod:`~gankit.eval.evaluator`: the trainer's interface.

Evaluation is handed the registries it reads (a :class:`gankit.core.plugins.PluginHost`);
it never looks up the process-wide plugin host itself.
"""
