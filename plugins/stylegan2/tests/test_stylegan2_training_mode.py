"""StyleGAN2's generator in training mode, as the official loss's ``run_G`` runs it.

The forward goldens (../shared/parity/stylegan2ada_official.pt) were made
in eval mode; the step goldens run without style mixing. So here, on the
golden networks: every training-mode mapping call moves ``w_avg`` to
``lerp(mean w, w_avg, 0.995)`` from the official ws; style mixing draws its
cutoff, its coin and its second z in run_G's order (``random_(1, num_ws)``,
``rand([])``, ``randn_like(z)``), replaces the ws from the cutoff on with
those of the second z, and leaves ``w_avg`` to the first; and the images
are the synthesis of the mixed ws. (Path length, the gradients and the
whole step are checked against the step goldens in test_stylegan2_training.py.)
"""

from __future__ import annotations

import copy

import pytest
import torch

from gankit_stylegan2 import official
from goldens import load_golden, rel_inf

CONFIGS = ["tiny_orig_16px", "tiny_resnet_32px_cond10", "tiny_skip_16px"]


@pytest.fixture(scope="module")
def golden():
    return load_golden("stylegan2ada_official.pt")


def generator(t: dict, **kwargs):
    return official.generator(t["G_kwargs"], t["G_state"], **kwargs)


def labels_of(t: dict):
    return t["c"].argmax(dim=1) if t["c"].shape[1] else None


@pytest.mark.parametrize("name", CONFIGS)
def test_each_training_mode_mapping_call_moves_w_avg_from_the_official_ws(golden, name):
    t = golden[name]
    G = generator(t, style_mixing_prob=0.0).train()
    before = G.w_avg.clone()
    G.mapping(t["z"], labels_of(t))
    w = t["ws"][:, 0]  # the official mapping's w (the same for every layer before truncation)
    expected = w.mean(dim=0).lerp(before, 0.995)
    assert rel_inf(G.w_avg, expected) < 1e-5
    G.mapping(t["z"], labels_of(t))  # every call, not once per step
    assert rel_inf(G.w_avg, w.mean(dim=0).lerp(expected, 0.995)) < 1e-5
    G.eval()(t["z"], labels_of(t))  # eval mode: never
    assert rel_inf(G.w_avg, w.mean(dim=0).lerp(expected, 0.995)) < 1e-5


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_style_mixing_is_run_Gs(golden, name, seed):
    t = golden[name]
    z, c = t["z"], labels_of(t)
    G = generator(t, style_mixing_prob=0.5).train()
    reference = copy.deepcopy(G)
    torch.manual_seed(seed)
    images, ws = G(z, c, return_ws=True)

    # run_G, step by step, on the same networks and the same stream.
    torch.manual_seed(seed)
    mapping, synthesis = reference.mapping, reference.synthesis
    expected_ws = mapping(z, c)
    w_avg = mapping.w_avg.clone()
    cutoff = torch.empty([], dtype=torch.int64).random_(1, expected_ws.shape[1])
    cutoff = torch.where(torch.rand([]) < 0.5, cutoff, torch.full_like(cutoff, expected_ws.shape[1]))
    expected_ws[:, cutoff:] = mapping(torch.randn_like(z), c, update_w_avg=False)[:, cutoff:]
    expected_images = synthesis(expected_ws)

    assert torch.equal(mapping.w_avg, w_avg)  # the second z leaves w_avg alone
    assert torch.equal(G.w_avg, w_avg)
    assert torch.equal(ws, expected_ws) and torch.equal(images, expected_images)
    if int(cutoff) < ws.shape[1]:  # this seed mixed: the layers from the cutoff on are the second z's
        assert not torch.equal(ws[:, int(cutoff):], ws[:, :1].expand_as(ws[:, int(cutoff):]))


def test_style_mixing_mixes_about_as_often_as_its_probability(golden):
    t = golden["tiny_orig_16px"]
    G = generator(t, style_mixing_prob=0.9).train()
    torch.manual_seed(0)
    mixed = 0
    for _ in range(200):
        _, ws = G(t["z"][:2], return_ws=True)
        mixed += not torch.equal(ws[:, -1], ws[:, 0])
    assert 160 <= mixed <= 195  # 180 expected
