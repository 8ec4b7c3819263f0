"""R3GAN trains as brownvc/R3GAN (19a7ddf) trains: whole iterations against ../shared/parity/r3gan_step.pt.

Each stored configuration is trained by gankit's step built from a shipped
recipe (``r3gan_cifar10``, ``r3gan_cifar10_cond``) with the configuration's
networks and schedules put in: the recipe's own RpGAN loss, R1 and R2 taken
from the loss's own D pass, its five cosine schedules, and G's update on a
fresh z and a fresh real batch (``g_step: fresh``); a conditional fake has
its paired real's class. The recorded inputs go in through the step's doors
(D's and G's real batches, a :class:`~gankit.training.feeding.ReplayedLatents`
with each phase's z, and in C a :class:`~gankit.augment.draws.ReplayedDraws`
with every draw of the augmentation pipe), and every stored state must match
within ../shared/parity/README.md's tolerances: from ``init`` through all K
iterations, and one iteration at a time from each stored state. ``pytest -s``
prints the differences.
"""

from __future__ import annotations

import pytest

from gankit.augment.draws import ReplayedDraws
from gankit.training.feeding import ReplayedLatents
from gankit_r3gan import official
from goldens import load_golden, rel_inf
from parity_steps import LOSSES, MOMENTS, PARAMS, build, differences, load_optimizer, moments, report, shipped

RECIPES = {"A_uncond": "r3gan_cifar10", "B_cond10": "r3gan_cifar10_cond", "C_uncond_aug": "r3gan_cifar10"}
SCHEDULES = {"lr_scheduler": ["optim.g.lr", "optim.d.lr"], "beta2_scheduler": ["optim.g.betas.1", "optim.d.betas.1"],
             "gamma_scheduler": ["regularizers.0.gamma", "regularizers.1.gamma"],
             "ema_scheduler": "train.ema.half_life_kimg", "aug_scheduler": "augment.p"}


@pytest.fixture(scope="module")
def golden():
    return load_golden("r3gan_step.pt")


def recipe_for(t: dict, base: str) -> dict:
    """The shipped recipe ``base`` with the golden configuration's networks, batch, schedules and augmentation."""
    raw, k = shipped(base), t["official_kwargs"]
    g = official.gankit_kwargs(k["G_train_kwargs"], "generator")
    d = official.gankit_kwargs(k["D_train_kwargs"], "discriminator")
    size, channels = g.pop("image_size"), g.pop("channels")
    d.pop("image_size"), d.pop("channels")
    raw["data"].update(image_size=size, channels=channels, batch_size=k["batch_size"])
    raw["generator"] = {"name": "r3gan", **g}
    raw["discriminator"] = {"name": "r3gan", **d}
    assert [r["name"] for r in raw["regularizers"]] == ["r1", "r2"]
    by_target = {str(s["target"]): s for s in raw["schedules"]}
    for key, target in SCHEDULES.items():
        spec = by_target[str(target)]
        assert spec["name"] == "cosine"
        values = dict(k[key])
        if key == "ema_scheduler":  # the official counts images, the recipe thousands of images
            values = {n: v / 1000 if n != "total_nimg" else v for n, v in values.items()}
        spec.update(values)
    if k["augment_kwargs"] is None:  # train.py --aug=False: no pipe, no p to schedule
        raw.pop("augment")
        raw["schedules"] = [s for s in raw["schedules"] if s["target"] != "augment.p"]
    else:  # the recipe's pipe is train.py's
        multipliers = {n: v for n, v in raw["augment"].items() if n not in ("name", "target", "p")}
        assert {n: float(v) for n, v in k["augment_kwargs"].items() if n not in ("xflip", "rotate90", "xint", "scale",
                "rotate", "aniso", "xfrac")} == {n: float(v) for n, v in multipliers.items()}
    raw["train"].update(steps=len(t["iters"]), accumulate=k["batch_size"] // (k["d_batch_gpu"] * k["num_gpus"]))
    assert k["g_batch_gpu"] == k["d_batch_gpu"]
    return raw


def trainer(t: dict, name: str):
    built = build(recipe_for(t, RECIPES[name]))
    built.key_maps = {"G": official.key_map(t["init"]["G"], "generator"),
                      "D": official.key_map(t["init"]["D"], "discriminator")}
    return built


def load(built, state: dict, cur_nimg: int) -> None:
    """The golden state (``init`` or an iteration's ``after``) into gankit's players."""
    p = built.players
    official.load_official_state_dict(p.G, state["G"], "generator")
    official.load_official_state_dict(p.D, state["D"], "discriminator")
    official.load_official_state_dict(p.ema.module, state["G_ema"], "generator")
    p.ema.images_seen = int(cur_nimg)
    p.opt_g.state.clear(), p.opt_d.state.clear()
    if "G_opt" in state:
        load_optimizer(p.opt_g, p.G, state["G_opt"], built.key_maps["G"])
        load_optimizer(p.opt_d, p.D, state["D_opt"], built.key_maps["D"])


def classes(onehot):
    return onehot.argmax(dim=1) if onehot.shape[-1] else None


def iterate(built, it: dict) -> dict:
    """One iteration on the recorded inputs (D's batch and G's own); returns gankit's stats."""
    built.step.latents = ReplayedLatents(z={"Dmain": [it["D_z"]], "Gmain": [it["G_z"]]})
    if "aug_draws" in it:
        built.step.aug_generator = ReplayedDraws(it["aug_draws"], it["aug_draw_fns"])
    values = built.scheduled.apply(it["cur_nimg"])
    sched = it["sched"]
    assert values["schedule/optim.g.lr"] == pytest.approx(sched["lr"], rel=1e-12)
    assert values["schedule/regularizers.0.gamma"] == pytest.approx(sched["gamma"], rel=1e-12)
    stats = built.step([(it["D_real_img"], classes(it["D_real_c"])), (it["G_real_img"], classes(it["G_real_c"]))],
                       it["batch_idx"])
    assert stats is not None
    assert built.step.latents.left() == {}
    if "aug_draws" in it:
        assert built.step.aug_generator.left == 0  # every recorded draw, in the official order
    return stats


def loss_means(it: dict, stats: dict, gamma: float) -> dict[str, float]:
    """|gankit's - the official| mean of each reported loss of the iteration."""
    d, g = it["losses"]["D"], it["losses"]["G"]
    pairs = {"Loss/D/loss": (stats["loss_d"], d["Loss/D/loss"]), "Loss/G/loss": (stats["loss_g"], g["Loss/G/loss"]),
             "Loss/r1_penalty": (stats["r1"] / (gamma / 2), d["Loss/r1_penalty"]),
             "Loss/r2_penalty": (stats["r2"] / (gamma / 2), d["Loss/r2_penalty"])}
    return {n: abs(float(ours) - float(theirs.double().mean())) for n, (ours, theirs) in pairs.items()}


def compare(built, it: dict, stats: dict, label: str) -> dict:
    p, after, keys = built.players, it["after"], built.key_maps
    g_m, d_m = moments(p.opt_g, p.G, after["G_opt"], keys["G"]), moments(p.opt_d, p.D, after["D_opt"], keys["D"])
    groups = {
        "G": differences(p.G.state_dict(), after["G"], keys["G"]), "D": differences(p.D.state_dict(), after["D"], keys["D"]),
        "G_ema": differences(p.ema.module.state_dict(), after["G_ema"], keys["G"]),
        "G_exp_avg": g_m["exp_avg"], "G_exp_avg_sq": g_m["exp_avg_sq"],
        "D_exp_avg": d_m["exp_avg"], "D_exp_avg_sq": d_m["exp_avg_sq"],
        "adam_steps": {**g_m["step"], **{f"D.{k}": v for k, v in d_m["step"].items()}},
        "losses": loss_means(it, stats, it["sched"]["gamma"]),
    }
    return report(label, groups)


def check(table: dict, label: str) -> None:
    limits = {"G": PARAMS, "D": PARAMS, "G_ema": PARAMS, "G_exp_avg": MOMENTS, "G_exp_avg_sq": MOMENTS,
              "D_exp_avg": MOMENTS, "D_exp_avg_sq": MOMENTS, "adam_steps": 0.0, "losses": LOSSES}
    bad = {g: v for g, v in table.items() if v[0] > limits[g]}
    assert not bad, f"{label}: beyond the tolerance: {bad}"


@pytest.mark.parametrize("name", list(RECIPES))
def test_the_trajectory_from_init(golden, name):
    t = golden[name]
    built = trainer(t, name)
    load(built, t["init"], 0)
    for k, it in enumerate(t["iters"]):
        stats = iterate(built, it)
        check(compare(built, it, stats, f"{name} iteration {k + 1} from init"), f"{name} iteration {k + 1}")


@pytest.mark.parametrize("name", list(RECIPES))
def test_each_iteration_from_its_stored_state(golden, name):
    t = golden[name]
    built = trainer(t, name)
    for k in range(1, len(t["iters"])):
        before = t["iters"][k - 1]["after"]
        load(built, before, before["cur_nimg"])
        it = t["iters"][k]
        stats = iterate(built, it)
        check(compare(built, it, stats, f"{name} iteration {k + 1} alone"), f"{name} iteration {k + 1} alone")


@pytest.mark.parametrize("name", list(RECIPES))
def test_the_first_iterations_gradients(golden, name):
    """Every parameter's gradient of D's and G's update, just before the optimizer step (rounds averaged)."""
    t = golden[name]
    built = trainer(t, name)
    load(built, t["init"], 0)
    it = t["iters"][0]
    iterate(built, it)
    assert [player for player, _ in built.grads] == ["discriminator", "generator"]  # D's phase, then G's
    diffs = {}
    for ph, (player, ours) in zip(["D", "G"], built.grads):
        mapping = built.key_maps[ph]
        assert {mapping[k] for k in it["grads"][ph]} == set(ours), ph
        diffs[ph] = {k: rel_inf(ours[mapping[k]], g) for k, g in it["grads"][ph].items()}
    table = report(f"{name} gradients of iteration 1", diffs)
    # With beta1 = 0 the first moment is the last gradient: gradients get the moments' tolerance.
    assert all(w <= MOMENTS for w, _ in table.values()), table


def test_the_configurations_cover_what_the_issue_lists(golden):
    """Unconditional; conditional with two rounds; the augmentation pipe with p scheduled and its draws recorded."""
    cfg = {n: golden[n]["config"] for n in RECIPES}
    assert cfg["B_cond10"]["c_dim"] == 10 and cfg["B_cond10"]["batch"] // cfg["B_cond10"]["batch_gpu"] == 2
    assert cfg["C_uncond_aug"]["augment"] and all("aug_draws" in it for it in golden["C_uncond_aug"]["iters"])
