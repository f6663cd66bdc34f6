"""Recipe wiring: every option of a params recipe reaches the object built for training."""

import pytest

from mollify.augment import BatchRecipe
from mollify.augment.policies import AugMix, ReleaseAugMix
from mollify.config import parse_params
from mollify.errors import MollifyError
from mollify.training.run import build_augmentation, build_recipe
from tests.conftest import DefaultDeviceWatch, default_params

MOLLIFY = {"roles": "xbe", "alpha": 2.5, "beta": 0.5, "label_mode": "lm", "npow": 3.0, "bpow": 0.5, "combined": True}
SOFTAUG = {"sigma_crop": 7.0, "power": 3.0, "background": 0.2, "confidence_weight": "per_sample", "final_epochs_without": 3}
NFM = {"alpha": 0.5, "add_level": 0.1, "mult_level": 0.3, "manifold": False}


def _recipe(**recipe):
    listed = {"methods": ["base"], "diffaug_methods": ["r"]} if recipe.get("diffaug") else {"methods": ["base", "r"]}
    raw = {"datasets": ["demo"], **listed, "corrupt": {"corruptions": ["fog"]}, "train": {"epochs": 10},
           "recipes": {"base": {}, "r": recipe}}
    return parse_params(raw).recipe("r")


def test_mollification_options_reach_the_batch_recipe():
    built = build_recipe(_recipe(augment=["flip", "mixup"], mollify=MOLLIFY), 7)
    assert {k: getattr(built.mollification, k) for k in MOLLIFY} == MOLLIFY
    assert built.mollification.num_classes == 7 and built.output_classes == 8  # lm: one noise class more
    assert built.mix == "mixup" and built.softaug is None and built.nfm is None and built.augmix_views is None


def test_soft_augmentation_and_nfm_options_reach_the_batch_recipe():
    built = build_recipe(_recipe(augment=["flip"], softaug=SOFTAUG), 10)
    assert {k: getattr(built.softaug, k) for k in SOFTAUG} == SOFTAUG
    assert built.softaug.num_classes == 10 and built.mollification is None and built.mix is None
    built = build_recipe(_recipe(augment=["flip"], nfm=NFM), 10)
    assert {k: getattr(built.nfm, k) for k in NFM} == NFM and built.softaug is None


def test_augmix_jsd_and_diffaug_reach_the_batch_recipe():
    built = build_recipe(_recipe(augment=["augmix"], augmix_jsd=True), 10)
    assert type(built.augmix_views) is ReleaseAugMix and built.diffaug is None  # the AugMix release's, by default
    built = build_recipe(_recipe(augment=["augmix"], augmix_jsd=True, augmix_jsd_ops="torchvision"), 10)
    assert type(built.augmix_views) is AugMix
    sentinel = object()
    assert build_recipe(_recipe(augment=["flip"], diffaug=True), 10, sentinel).diffaug is sentinel
    with pytest.raises(MollifyError, match="needs the diffusion model"):
        build_recipe(_recipe(augment=["flip"], diffaug=True), 10)
    assert build_recipe(_recipe(augment=["cutmix"]), 10).mix == "cutmix"
    assert isinstance(build_recipe(_recipe(), 10), BatchRecipe)


@pytest.mark.parametrize("method", list(parse_params(default_params()).recipes))
def test_every_tensor_a_recipes_training_step_makes_is_placed_on_the_images_device(method):
    """Each default recipe (augmentations, soft crop, mollification, NFM, DiffAug, smoothing blocks) trains one
    step on 16 px images with no tensor factory of mollify's left to torch's default device (on CUDA: the CPU)."""
    import torch

    from mollify.augment import DiffAug, NormalizedDiffAug
    from mollify.device import Normalize
    from mollify.diffusion.model import make_unet
    from mollify.training.losses import LOSSES
    from mollify.models import create_model
    from mollify.training.loop import TrainSettings, train

    cfg = parse_params(default_params())
    recipe = cfg.recipe(method)
    normalize = Normalize((0.5,) * 3, (0.25,) * 3, torch.device("cpu"))
    diffaug = NormalizedDiffAug(DiffAug(make_unet("demo", 16)), normalize) if recipe.diffaug else None
    built = build_recipe(recipe, 10, diffaug)
    torch.manual_seed(0)
    model = create_model(cfg.model_name(method, "demo"), built.output_classes, smoothing=recipe.smoothing,
                         mc_dropout=recipe.mc_dropout)
    augment = build_augmentation(recipe, cfg.train)
    images = torch.randint(0, 256, (8, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    settings = TrainSettings(epochs=1, batch_size=8, lr=0.01, momentum=0.9, nesterov=True, weight_decay=5e-4,
                             warmup_epochs=0, seed=0)
    with DefaultDeviceWatch() as watch:
        train(model, images, torch.arange(8), augment, normalize, built, LOSSES[recipe.loss], settings, show_progress=False)
    assert watch.unplaced == []
