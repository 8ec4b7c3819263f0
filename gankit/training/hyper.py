"""Scheduled hyperparameters: before each step, set every scheduled value from the images seen so far.

The schedules are functions of the checkpointed image count
(``Counters.images_seen``, all processes together), so a resumed run sets
the same values at the same step. A player with a lazy regulariser keeps
StyleGAN2's Adam adjustment on top of the scheduled value (lr × ratio,
beta ** ratio).
"""

from __future__ import annotations

from collections.abc import Callable

from gankit.core.errors import GankitError


class Scheduled:
    """The recipe's schedules, each bound to the object it sets."""

    def __init__(self, recipe, players, stepper, registry: Callable):
        self.items = []
        reg = registry("schedules")
        for spec in recipe.schedules:
            schedule = reg.build_from_recipe(spec.name, None, **{k: v for k, v in spec.args.items() if k != "target"})
            for target in spec.targets:
                self.items.append((target, schedule, self._setter(target, players, stepper)))

    @staticmethod
    def _setter(target: str, players, stepper) -> Callable[[float], None]:
        parts = target.split(".")
        if parts[0] == "optim":
            player = "generator" if parts[1] == "g" else "discriminator"
            opt = players.opt_g if player == "generator" else players.opt_d
            ratio = (players.lazy_ratios or {}).get(player, 1.0)
            if parts[2] == "lr":
                def set_lr(v):
                    for group in opt.param_groups:
                        group["lr"] = v * ratio
                return set_lr
            k = int(parts[3])

            def set_beta(v):
                for group in opt.param_groups:
                    betas = list(group["betas"])
                    betas[k] = v**ratio
                    group["betas"] = tuple(betas)
            return set_beta
        if parts[0] == "regularizers":
            reg, attr = stepper.regularizers[int(parts[1])], parts[2]
            if not hasattr(reg, attr):
                raise GankitError(f"schedules: regularizer {parts[1]} ({type(reg).__name__}) has no '{attr}' to schedule")
            return lambda v: setattr(reg, attr, v)
        if parts[0] == "train":
            return lambda v: setattr(players.ema, "half_life_images", v * 1000)
        augment = stepper.augment
        if not hasattr(augment, "p"):
            raise GankitError(f"schedules: augment '{type(augment).__name__}' has no probability p to schedule")
        return lambda v: setattr(augment, "p", v)

    def apply(self, images_seen: int) -> dict[str, float]:
        """Set every scheduled value for ``images_seen``; returns them (logged as ``schedule/<target>``)."""
        values = {}
        for target, schedule, setter in self.items:
            value = float(schedule(images_seen))
            setter(value)
            values[f"schedule/{target}"] = value
        return values
