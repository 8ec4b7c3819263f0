"""The default step is still the DCGAN tutorial's (pytorch/examples ``dcgan/main.py``), written out here:

    (1) D: D(real) toward 1, D(G(z).detach()) toward 0, one optimizer step;
    (2) G: D(G(z)) of the same fakes toward 1 through the updated D, one optimizer step.

gankit's step is fed the same z through its latent source and must land on
the same weights (to float rounding: gankit sums D's two losses before one
backward pass where the tutorial runs two, and its D ends in logits with
BCE-with-logits, the tutorial's Sigmoid + BCELoss in one).
"""

import copy

import torch
import torch.nn.functional as F

from gankit.recipe import validate
from gankit.training.feeding import ReplayedLatents
from gankit.training.trainer import Trainer
from goldens import rel_inf


def tutorial_step(netG, netD, optG, optD, real, noise):
    ############################
    # (1) Update D network: maximize log(D(x)) + log(1 - D(G(z)))
    ###########################
    netD.zero_grad()
    output = netD(real).view(-1)
    errD_real = F.binary_cross_entropy_with_logits(output, torch.ones_like(output))
    errD_real.backward()
    fake = netG(noise)
    output = netD(fake.detach()).view(-1)
    errD_fake = F.binary_cross_entropy_with_logits(output, torch.zeros_like(output))
    errD_fake.backward()
    optD.step()
    ############################
    # (2) Update G network: maximize log(D(G(z)))
    ###########################
    netG.zero_grad()
    output = netD(fake).view(-1)
    errG = F.binary_cross_entropy_with_logits(output, torch.ones_like(output))
    errG.backward()
    optG.step()
    return errD_real + errD_fake, errG


def test_the_default_step_is_the_tutorials(tiny):
    trainer = Trainer(validate(tiny))
    trainer.start()
    step, players = trainer.job.gan_step, trainer.job.players
    netG, netD = copy.deepcopy(players.G), copy.deepcopy(players.D)
    optG = torch.optim.Adam(netG.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optD = torch.optim.Adam(netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
    batches = trainer.job.feeder.groups(lambda: True, lambda: False, lambda bad: None)
    for k in range(3):
        group = next(batches)
        noise = torch.randn(group[0][0].shape[0], netG.nz, generator=torch.Generator().manual_seed(k))
        step.latents = ReplayedLatents(z={"Dmain": [noise]})
        stats = step(group, k)
        err_d, err_g = (e.detach() for e in tutorial_step(netG, netD, optG, optD, group[0][0], noise))
        assert step.latents.left() == {}  # one z a step: G's update reuses D's fakes
        assert abs(float(stats["loss_d"]) - float(err_d)) < 1e-5 and abs(float(stats["loss_g"]) - float(err_g)) < 1e-5
    # ~2e-7 apart; the same loop with G on a fresh z lands ~1 away (BatchNorm statistics included)
    for ours, theirs in ((players.G, netG), (players.D, netD)):
        for (name, a), b in zip(ours.state_dict().items(), theirs.state_dict().values()):
            assert rel_inf(a.float(), b.float()) < 1e-5, name
    trainer.job.lock.release()
