"""FD-DINOv2 against a direct computation: timm's DINOv2 ViT-L/14 with generated weights of the real shapes,
dgm-eval's preprocessing written out here from its code, and scipy's Fréchet distance on float64 statistics.

ViT-L is 300M parameters (about 5 s per image on a busy 2-core CPU): the generated weights are made once per
session, a handful of images are measured, and the tests that run the network are marked slow. The fast ones
check the preprocessing and the position embedding, which are where an implementation usually drifts.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from eval_fixtures import digits_uint8, noisy, write_folder
from PIL import Image

from gankit.eval import dinov2

N = 4  # images per side: a few seconds each


def dgm_eval_transform(pil: Image.Image) -> torch.Tensor:
    """dgm-eval's DINOv2Encoder.transform (clean_resize off), as its code writes it."""
    import torchvision.transforms as TF

    image = TF.Compose([TF.Resize((224, 224), TF.InterpolationMode.BICUBIC), TF.ToTensor()])(pil)
    return TF.Normalize(np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225]))(image)


def dinov2_interpolated(pos_embed: torch.Tensor, w: int, h: int, patch: int = 14) -> torch.Tensor:
    """DinoVisionTransformer.interpolate_pos_encoding (facebookresearch/dinov2), for a w x h input."""
    n = pos_embed.shape[1] - 1
    dim = pos_embed.shape[-1]
    w0, h0 = w // patch + 0.1, h // patch + 0.1
    patches = torch.nn.functional.interpolate(
        pos_embed[:, 1:].float().reshape(1, int(math.sqrt(n)), int(math.sqrt(n)), dim).permute(0, 3, 1, 2),
        scale_factor=(float(w0 / math.sqrt(n)), float(h0 / math.sqrt(n))), mode="bicubic")
    return torch.cat((pos_embed[:, :1], patches.permute(0, 2, 3, 1).view(1, -1, dim)), dim=1)


def test_preprocessing_is_dgm_evals_byte_for_byte():
    # upsampled small digits, and a downsampled noisy non-square image (PIL's antialiasing at work)
    images = [*digits_uint8(3, size=32), noisy(digits_uint8(1, size=300, seed=4), 0.7)[0, :, :, :250]]
    for image in images:
        mine = dinov2.preprocess(image[None])[0]
        theirs = dgm_eval_transform(Image.fromarray(image.permute(1, 2, 0).numpy()))
        assert mine.shape == (3, 224, 224) and torch.allclose(mine, theirs.float(), atol=1e-6)


def test_the_position_embedding_is_resized_as_dinov2_does_not_as_timm_does():
    from timm.layers import resample_abs_pos_embed

    pos = torch.randn(1, 1 + 37 * 37, 8, generator=torch.Generator().manual_seed(0))
    ours = dinov2.dinov2_pos_embed(pos)
    assert ours.shape == (1, 1 + 16 * 16, 8)
    assert torch.equal(ours, dinov2_interpolated(pos, 224, 224))
    timms = resample_abs_pos_embed(pos, new_size=(16, 16), num_prefix_tokens=1)
    assert (ours - timms).abs().max() > 1e-3  # why gankit resizes it itself


def test_weights_of_another_shape_are_a_clear_error(tmp_path):
    from gankit.eval.errors import WeightsError

    with pytest.raises(WeightsError, match="does not fit timm's vit_large_patch14_dinov2"):
        dinov2.vit_large({"pos_embed": torch.zeros(1, 1370, 1024), "cls_token": torch.zeros(1, 1, 768)})


# -- the network itself (slow) ------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def dinov2_file(tmp_path_factory):
    """Generated weights of the published file's layout (:func:`eval_fixtures.make_dinov2_weights`)."""
    from safetensors.torch import load_file

    from eval_fixtures import make_dinov2_weights

    path = make_dinov2_weights(tmp_path_factory.mktemp("dinov2") / "model.safetensors")
    state = load_file(str(path))
    shapes = {"pos_embed": (1, 1370, 1024), "cls_token": (1, 1, 1024), "patch_embed.proj.weight": (1024, 3, 14, 14),
              "blocks.23.mlp.fc1.weight": (4096, 1024), "blocks.23.ls2.gamma": (1024,), "norm.bias": (1024,)}
    assert {k: tuple(state[k].shape) for k in shapes} == shapes and "mask_token" not in state
    return path


@pytest.fixture(scope="session")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("dinov2-images")
    return (write_folder(root / "real", digits_uint8(N, size=32)),
            write_folder(root / "fake", noisy(digits_uint8(N, size=32, seed=1), 0.5)))


@pytest.fixture(scope="session")
def direct(dinov2_file, folders):
    """FD-DINOv2 computed without gankit: timm + DINOv2's own position interpolation + dgm-eval's transform +
    dgm-eval's Fréchet distance (np.cov, scipy.linalg.sqrtm) on float64 statistics."""
    import timm
    from safetensors.torch import load_file
    from scipy import linalg

    model = timm.create_model(dinov2.TIMM_NAME, pretrained=False, img_size=518, num_classes=0)
    state = load_file(str(dinov2_file))
    model.load_state_dict(state)
    model.eval()

    def reps(folder):
        x = torch.stack([dgm_eval_transform(Image.open(p).convert("RGB")) for p in sorted(folder.iterdir())]).float()
        with torch.no_grad():
            tokens = model.patch_embed.proj(x).flatten(2).transpose(1, 2)  # DINOv2's PatchEmbed: conv, then tokens
            tokens = torch.cat([model.cls_token.expand(len(x), -1, -1), tokens], dim=1)
            tokens = tokens + dinov2_interpolated(model.pos_embed, 224, 224)
            for block in model.blocks:
                tokens = block(tokens)
            return model.norm(tokens)[:, 0].double().numpy()

    r1, r2 = reps(folders[0]), reps(folders[1])
    mu1, mu2, s1, s2 = r1.mean(0), r2.mean(0), np.cov(r1, rowvar=False), np.cov(r2, rowvar=False)
    covmean = linalg.sqrtm(s1.dot(s2))
    value = float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean.real))
    return {"value": value, "real": r1, "fake": r2}


@pytest.mark.slow
def test_gankit_eval_folders_fd_dinov2_equals_the_direct_computation(dinov2_file, folders, direct, tmp_path,
                                                                        capsys, monkeypatch):
    from gankit.cli import main
    from gankit.eval.weights_lookup import sha256_of

    monkeypatch.setenv("GANKIT_CACHE_DIR", str(tmp_path / "cache"))
    code = main(["eval", "--real", str(folders[0]), "--fake", str(folders[1]), "--metrics", "fd_dinov2",
                 "--dinov2-weights", str(dinov2_file), "--bootstrap-resamples", "5", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["values"]["fd_dinov2"] == pytest.approx(direct["value"], rel=1e-5)
    (row,) = out["rows"]
    assert row["feature_extractor"] == "dinov2_vitl14" and row["weights_sha256"] == sha256_of(dinov2_file)
    assert row["input_resolution"] == 224 and "PIL bicubic to 224x224" in row["resize"] and row["antialias"]
    assert row["budget_name"] == "fd_dinov2_4_full" and row["ci_low"] <= row["ci_high"]
    assert row["implementation"].endswith("FrechetInceptionDistance") and row["ci_resamples"] == 5


@pytest.mark.slow
def test_one_dinov2_pass_serves_every_metric_in_its_space(dinov2_file, folders, direct, tmp_path):
    from gankit.core.plugins import get_host
    from gankit.eval.engine import Engine, FolderImages, Reference
    from gankit.eval.images import ImageFolder
    from gankit.recipe.schema import EvalSection

    cfg = EvalSection.model_validate({"metrics": ["fd_dinov2", "fid", "kid", "prdc"], "num_real": N,
                                      "feature_extractor": "dinov2_vitl14", "kid_subset_size": N, "kid_subsets": 3,
                                      "prdc_k": 2, "dinov2_weights": str(dinov2_file),
                                      "bootstrap_resamples": 0, "cache_dir": str(tmp_path / "cache")})
    engine = Engine(cfg, torch.device("cpu"), registry=get_host().registry)
    engine.prepare()
    assert list(engine.extractors) == ["dinov2_vitl14"]
    real, fake = ImageFolder(folders[0]), ImageFolder(folders[1])
    rows = engine.measure(Reference(real, real.identity()), FolderImages(fake, None, 0), None)
    assert engine.extractors["dinov2_vitl14"].images_seen == 2 * N  # one pass over each image, for all four
    values = {row["metric"]: row["value"] for row in rows}
    assert values["fd_dinov2"] == pytest.approx(direct["value"], rel=1e-5)
    # fid reads the same features through the same torchmetrics class (4 images: its eigenvalues near 0 move ~1e-7)
    assert values["fid"] == pytest.approx(values["fd_dinov2"], rel=1e-6)
    assert {row["feature_extractor"] for row in rows} == {"dinov2_vitl14"}
