"""Starting a new run from a trained run's weights: ``init_from`` (fine-tuning, new learning rates)."""

from __future__ import annotations

import yaml

from gankit.recipe import validate
from gankit.rundir.checkpoint import load_checkpoint
from gankit.training.trainer import Trainer, train
from helpers import gankit, states_equal


def test_a_new_run_starts_from_a_runs_generator_with_fresh_optimizers(tiny):
    source = train(validate(tiny))
    trained = load_checkpoint(source)
    tiny.update(init_from=str(source), init_from_parts=["generator"], name="finetune")
    tiny["optim"] = {"g": {"name": "adam", "lr": 1e-5, "betas": [0.5, 0.999]}}
    trainer = Trainer(validate(tiny))
    trainer.start()
    try:
        assert states_equal(trainer.G.state_dict(), trained["generator"])
        assert not states_equal(trainer.D.state_dict(), trained["discriminator"])  # only the parts asked for
        assert trainer.job.players.opt_g.state_dict()["state"] == {}  # optimizers start fresh
        info = trainer.job.info["init_from"]
        assert info["run_id"] == trained["run_id"] and info["step"] == 4 and info["parts"] == ["generator"]
        recorded = yaml.safe_load((trainer.run_dir / "recipe.yaml").read_text())["gankit"]["init_from"]
        assert recorded["sha256"] == info["sha256"] and len(info["sha256"]) == 64
    finally:
        trainer.job.lock.release()


def test_init_from_a_missing_run_or_a_misfit_checkpoint_is_a_clear_error(tiny, write_recipe, tmp_path):
    code, _, err = gankit("validate", str(write_recipe(tiny)), f"init_from={tmp_path / 'nowhere'}")
    assert code == 2 and "init_from: '" in err and "does not exist" in err
    source = train(validate(tiny))
    tiny["generator"]["ngf"] = 16  # another shape
    code, _, err = gankit("run", str(write_recipe(tiny)), f"init_from={source}")
    assert code == 2 and "does not fit this recipe's generator (init_from)" in err, err
