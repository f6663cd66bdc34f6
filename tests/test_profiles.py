"""params.yaml is composed from conf/ by Hydra on `dvc exp run` (DVC's Hydra composition)."""

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from mollify.config import parse_params
from tests.conftest import ROOT


def _compose(*overrides: str) -> dict:
    with initialize_config_dir(str(ROOT / "conf"), version_base=None):
        return OmegaConf.to_container(compose(config_name="config", overrides=list(overrides)))


def test_params_yaml_is_the_composed_default():
    assert _compose() == yaml.safe_load((ROOT / "params.yaml").read_text())


def test_paper_profile_is_the_papers_grid():
    cfg = parse_params(_compose("profile=paper"))
    assert cfg.datasets == ["cifar10", "cifar100", "tinyimagenet"]
    assert (cfg.train.model, cfg.train.epochs, cfg.train.lr, cfg.train.batch_size) == ("preact_resnet50", 300, 0.01, 128)
    assert (cfg.train.momentum, cfg.train.weight_decay, cfg.train.nesterov) == (0.9, 5e-4, False)
    baselines = ["none", "fcr", "fcr_randaug", "fcr_autoaug", "fcr_augmix", "fcr_trivaug", "fcr_mixup", "fcr_cutmix"]
    assert cfg.methods[:16] == baselines + [f"{b}_mollify" for b in baselines]
    for b in baselines:
        assert cfg.recipe(b).mollify is None and cfg.recipe(f"{b}_mollify").mollify is not None
        assert cfg.recipe(b).augment == cfg.recipe(f"{b}_mollify").augment
    ablations = {m: cfg.recipe(m).mollify for m in cfg.methods[16:]}
    assert ablations["fcr_trivaug_mollify_xn"].roles == "xn" and ablations["fcr_trivaug_mollify_xb"].roles == "xb"
    assert {a.beta for a in ablations.values()} == {2.0, 4.0, 9.0}
    assert (ablations["fcr_trivaug_mollify_nols"].npow, ablations["fcr_trivaug_mollify_nols"].bpow) == (100, 100)
    powers = {(a.npow, a.bpow) for a in ablations.values()}
    assert powers == {(n, b) for n in (0.5, 1, 2) for b in (0.5, 1, 2)} | {(100, 100)}
    assert cfg.diffaug_methods == ["fcr_diffaug", "fcr_augmix_diffaug"]
    assert cfg.recipe("fcr_augmix_diffaug").augment == ["flip", "crop", "rotate", "augmix"]
    assert (cfg.diffusion.unet, cfg.diffusion.lr, cfg.diffusion.ema_decay) == ("ddpm_cifar10", 2e-4, 0.9999)
    assert cfg.evaluate.diffaug_ensemble.step == 50 and cfg.evaluate.diffaug_ensemble.corrupted_images is None


def test_overrides_of_unknown_keys_fail_at_composition():
    with pytest.raises(ConfigCompositionException):
        _compose("train.epoch=3")
    assert _compose("train.epochs=3")["train"]["epochs"] == 3


@pytest.mark.parametrize(("profile", "model", "schedule"), [
    ("nfm", "preact_resnet18", "step"), ("softaug", "resnet18", "cosine"), ("smoothing", "resnet18", "step"),
])
def test_method_profiles_compose_and_validate(profile, model, schedule):
    cfg = parse_params(_compose(f"profile={profile}"))
    assert (cfg.train.model, cfg.train.schedule) == (model, schedule)
    for method in cfg.methods:
        cfg.recipe(method)
    if profile == "nfm":
        assert cfg.train.milestones == [100, 150, 180] and cfg.recipe("nfm_recipe").nfm.add_level == 0.4
    if profile == "smoothing":
        assert cfg.train.milestones == [61, 121, 161] and cfg.train.lr_decay == 0.2
        assert cfg.recipe("smooth_mcdo").mc_dropout == 0.3 and cfg.recipe("smooth_mcdo").smoothing


@pytest.mark.parametrize("profile", ["paper", "nfm", "softaug", "smoothing"])
def test_profiles_evaluate_on_the_official_release_and_the_15_standard_corruptions(profile):
    corrupt = parse_params(_compose(f"profile={profile}")).corrupt
    assert corrupt.source == "official" and corrupt.max_images is None
    assert corrupt.corruptions == [
        "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
        "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression",
    ]
    assert parse_params(_compose()).corrupt.source == "generate"  # the demo keeps its generated 19
