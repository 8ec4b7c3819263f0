"""StyleGAN2-ADA trains as NVlabs/stylegan2-ada-pytorch (d72cc7d) trains: whole iterations against
../shared/parity/stylegan2ada_step.pt.

Each stored configuration is trained by gankit's step built from a shipped
recipe (``stylegan2_cifar10``, ``stylegan2_cifar10_cond``,
``stylegan2_celeba64``) with the configuration's sizes and values put in:
the recipe's own loss, regularisers, phase order (Gmain, Greg, Dmain, Dreg),
fresh latents per phase and rounds that add up (``accumulate_mode: sum``).
The recorded inputs go in through the step's doors (the real batch, and a
:class:`~gankit.training.feeding.ReplayedLatents` with every phase's z, the
classes drawn for the fakes and path length's probes), and every stored
state must match within ../shared/parity/README.md's tolerances: from
``init`` through all K iterations, and one iteration at a time from each
stored state. ``pytest -s`` prints the differences.
"""

from __future__ import annotations

import pytest
import torch

from gankit.training.feeding import PHASES, ReplayedLatents
from gankit_stylegan2 import official
from goldens import load_golden, rel_inf
from parity_steps import LOSSES, MOMENTS, PARAMS, build, differences, load_optimizer, moments, report, shipped

RECIPES = {"A_uncond_orig": "stylegan2_cifar10", "B_cond10_resnet": "stylegan2_cifar10_cond",
           "C_pathlength": "stylegan2_celeba64"}


@pytest.fixture(scope="module")
def golden():
    return load_golden("stylegan2ada_step.pt")


def recipe_for(t: dict, base: str) -> dict:
    """The shipped recipe ``base`` with the golden configuration's networks, penalties, Adam, batch and EMA."""
    raw, k = shipped(base), t["official_kwargs"]
    lk = k["loss_kwargs"]
    g, d = official.generator_kwargs(k["G_kwargs"]), official.discriminator_kwargs(k["D_kwargs"])
    size, channels = g.pop("image_size"), g.pop("channels")
    d.pop("image_size"), d.pop("channels")
    raw["data"].update(image_size=size, channels=channels, batch_size=k["batch_size"])
    raw["generator"] = {"name": "stylegan2", **g, "style_mixing_prob": lk["style_mixing_prob"]}
    raw["discriminator"] = {"name": "stylegan2", **d}
    raw.pop("augment", None)  # the goldens ran without an augmentation pipe
    regs = {r["name"]: r for r in raw["regularizers"]}
    assert set(regs) == {"r1", "path_length"}, "the official loss has lazy R1 and a Greg phase (path length)"
    regs["r1"].update(gamma=lk["r1_gamma"], every=k["D_reg_interval"])
    regs["path_length"].update(weight=lk["pl_weight"], decay=lk["pl_decay"], batch_shrink=lk["pl_batch_shrink"],
                               every=k["G_reg_interval"])
    for who, kw in (("g", k["G_opt_kwargs"]), ("d", k["D_opt_kwargs"])):
        raw["optim"][who].update(lr=kw["lr"], betas=[float(b) for b in kw["betas"]], eps=kw["eps"])
    raw["train"].update(steps=len(t["iters"]), accumulate=k["batch_size"] // (k["batch_gpu"] * k["num_gpus"]),
                        ema={"half_life_kimg": k["ema_kimg"], "rampup": k["ema_rampup"]})
    return raw


def trainer(t: dict, name: str):
    built = build(recipe_for(t, RECIPES[name]))
    keys = {"G": official.key_map(t["init"]["G"], "generator"), "D": official.key_map(t["init"]["D"], "discriminator")}
    built.key_maps = keys
    return built


def path_length(built):
    return next(r for r in built.regularizers if hasattr(r, "batch_shrink"))


def load(built, state: dict, cur_nimg: int) -> None:
    """The golden state (``init`` or an iteration's ``after``) into gankit's players."""
    p = built.players
    official.load_official(p.G, state["G"], "generator")
    official.load_official(p.D, state["D"], "discriminator")
    official.load_official(p.ema.module, state["G_ema"], "generator")
    p.ema.images_seen = int(cur_nimg)
    p.opt_g.state.clear(), p.opt_d.state.clear()
    if "G_opt" in state:
        load_optimizer(p.opt_g, p.G, state["G_opt"], built.key_maps["G"])
        load_optimizer(p.opt_d, p.D, state["D_opt"], built.key_maps["D"])
    path_length(built).mean = torch.as_tensor(state.get("pl_mean", 0.0), dtype=torch.float32).clone()


def classes(onehot: torch.Tensor) -> torch.Tensor | None:
    return onehot.argmax(dim=1) if onehot.shape[-1] else None


def iterate(built, it: dict, conditional: bool) -> dict:
    """One iteration on the recorded inputs; returns gankit's stats."""
    labels = {ph: [it["gen_c"][i].argmax(dim=1)] for i, ph in enumerate(PHASES)} if conditional else None
    probes = {"Greg": list(it["pl_noise"]["Greg"])} if "pl_noise" in it else None
    built.step.latents = ReplayedLatents(z={ph: [it["gen_z"][i]] for i, ph in enumerate(PHASES)}, labels=labels,
                                         probes=probes)
    built.scheduled.apply(it["cur_nimg"])
    stats = built.step([(it["real_img"], classes(it["real_c"]))], it["batch_idx"])
    assert stats is not None
    left = built.step.latents.left()
    # Official draws every phase's z (and classes) each iteration; only the phases that ran use theirs.
    assert {k.split("/")[1] for k in left} <= {"Dreg", "Greg"}, left
    return stats


def loss_means(t: dict, it: dict, stats: dict, built) -> dict[str, float]:
    """|gankit's - the official| mean of each reported loss of the iteration."""
    lk = t["official_kwargs"]["loss_kwargs"]
    k = t["official_kwargs"]
    out = {"Loss/G/loss": (stats["loss_g"], it["losses"]["Gmain"]["Loss/G/loss"]),
           "Loss/D/loss": (stats["loss_d"], it["losses"]["Dmain"]["Loss/D/loss"])}
    if "Loss/r1_penalty" in it["losses"].get("Dreg", {}):  # gankit's r1 is γ/2 · mean · every
        out["Loss/r1_penalty"] = (stats["r1"] / (lk["r1_gamma"] / 2 * k["D_reg_interval"]),
                                  it["losses"]["Dreg"]["Loss/r1_penalty"])
    if "Loss/pl_penalty" in it["losses"].get("Greg", {}):
        out["Loss/pl_penalty"] = (stats["path_length_penalty"] / (lk["pl_weight"] * k["G_reg_interval"]),
                                  it["losses"]["Greg"]["Loss/pl_penalty"])
    return {name: abs(float(ours) - float(theirs.double().mean())) for name, (ours, theirs) in out.items()}


def compare(built, t: dict, it: dict, stats: dict, label: str) -> dict:
    p, after, keys = built.players, it["after"], built.key_maps
    G, D, E = p.G.state_dict(), p.D.state_dict(), p.ema.module.state_dict()
    g_m, d_m = moments(p.opt_g, p.G, after["G_opt"], keys["G"]), moments(p.opt_d, p.D, after["D_opt"], keys["D"])
    groups = {
        "G": differences(G, after["G"], keys["G"]), "D": differences(D, after["D"], keys["D"]),
        "G_ema": differences(E, after["G_ema"], keys["G"]),
        "G_exp_avg": g_m["exp_avg"], "G_exp_avg_sq": g_m["exp_avg_sq"],
        "D_exp_avg": d_m["exp_avg"], "D_exp_avg_sq": d_m["exp_avg_sq"],
        "adam_steps": {**g_m["step"], **{f"D.{k}": v for k, v in d_m["step"].items()}},
        "pl_mean": {"pl_mean": abs(float(path_length(built).mean) - float(after["pl_mean"]))},
        "losses": loss_means(t, it, stats, built),
    }
    return report(label, groups)


def check(table: dict, label: str) -> None:
    limits = {"G": PARAMS, "D": PARAMS, "G_ema": PARAMS, "G_exp_avg": MOMENTS, "G_exp_avg_sq": MOMENTS,
              "D_exp_avg": MOMENTS, "D_exp_avg_sq": MOMENTS, "adam_steps": 0.0, "pl_mean": LOSSES, "losses": LOSSES}
    bad = {g: v for g, v in table.items() if v[0] > limits[g]}
    assert not bad, f"{label}: beyond the tolerance: {bad}"


@pytest.mark.parametrize("name", list(RECIPES))
def test_the_trajectory_from_init(golden, name):
    t = golden[name]
    built = trainer(t, name)
    load(built, t["init"], 0)
    conditional = t["config"]["c_dim"] > 0
    for k, it in enumerate(t["iters"]):
        stats = iterate(built, it, conditional)
        assert it["after"]["cur_nimg"] == it["cur_nimg"] + built.step.images([(it["real_img"], None)])
        check(compare(built, t, it, stats, f"{name} iteration {k + 1} from init"), f"{name} iteration {k + 1}")


@pytest.mark.parametrize("name", list(RECIPES))
def test_each_iteration_from_its_stored_state(golden, name):
    t = golden[name]
    built = trainer(t, name)
    conditional = t["config"]["c_dim"] > 0
    for k in range(1, len(t["iters"])):
        before = t["iters"][k - 1]["after"]
        load(built, before, before["cur_nimg"])
        it = t["iters"][k]
        stats = iterate(built, it, conditional)
        check(compare(built, t, it, stats, f"{name} iteration {k + 1} alone"), f"{name} iteration {k + 1} alone")


@pytest.mark.parametrize("name", list(RECIPES))
def test_the_first_iterations_gradients(golden, name):
    """Every parameter's gradient of every phase, just before its optimizer step (after the rounds add up)."""
    t = golden[name]
    built = trainer(t, name)
    load(built, t["init"], 0)
    it = t["iters"][0]
    iterate(built, it, t["config"]["c_dim"] > 0)
    phases = [ph for ph in it["phases_run"] if it["grads"][ph]]  # a Greg without path length steps nothing
    assert [player for player, _ in built.grads] == [
        "generator" if ph.startswith("G") else "discriminator" for ph in phases]  # Gmain, (Greg), Dmain, Dreg
    diffs = {}
    for ph, (player, ours) in zip(phases, built.grads):
        mapping = built.key_maps["G" if player == "generator" else "D"]
        assert {mapping[k] for k in it["grads"][ph]} == set(ours), ph  # every parameter, no other
        diffs[ph] = {k: rel_inf(ours[mapping[k]], g) for k, g in it["grads"][ph].items()}
    table = report(f"{name} gradients of iteration 1", diffs)
    # With beta1 = 0 the first moment is the last gradient: gradients get the moments' tolerance.
    assert all(w <= MOMENTS for w, _ in table.values()), table


def test_the_configurations_cover_what_the_issue_lists(golden):
    """D's three architectures, a conditional model with two rounds and an EMA ramp-up, path length on."""
    cfg = {n: golden[n]["config"] for n in RECIPES}
    assert {c["D_arch"] for c in cfg.values()} == {"orig", "resnet", "skip"}
    b = cfg["B_cond10_resnet"]
    assert b["c_dim"] == 10 and b["batch"] // b["batch_gpu"] == 2 and b["ema_rampup"]
    assert cfg["C_pathlength"]["pl_weight"] > 0
