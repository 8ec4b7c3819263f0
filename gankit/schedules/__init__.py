"""Hyperparameter schedules: a value as a function of the number of real images seen, one family per file.

A schedule is a component of the ``schedules`` registry, called with the
images seen so far (all processes together) and returning the value. A
recipe's ``schedules:`` list points each at a ``target``: a learning rate
(``optim.g.lr``), a beta (``optim.d.betas.1``), a regulariser's argument
(``regularizers.0.gamma``), the EMA's half-life (``train.ema.half_life_kimg``)
or the augmentation probability (``augment.p``). Being functions of the
checkpointed image count, they resume exactly.

Built in: ``constant``, ``linear`` (SNGAN's learning-rate decay) and
``cosine`` (R3GAN's ``cosine_decay_with_warmup``, with warm-up and hold).
"""
