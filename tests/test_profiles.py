"""params.yaml is composed from conf/ by Hydra on `dvc exp run` (DVC's Hydra composition)."""

import subprocess

import pytest
import yaml
from dvc.exceptions import InvalidArgumentError

from mollify.config import parse_params
from mollify.training.loop import learning_rate
from tests.conftest import ROOT, default_params


def _params_yaml() -> dict:
    """The params.yaml that must be the composition of conf/: the committed one while conf/ is as
    committed (an experiment rewrites the working copy's params.yaml), else the working copy's
    (conf/ being edited, params.yaml regenerated beside it)."""
    git = ["git", "-C", str(ROOT)]
    conf_edited = subprocess.run([*git, "diff", "--quiet", "HEAD", "--", "conf"], capture_output=True).returncode != 0
    committed = subprocess.run([*git, "show", "HEAD:params.yaml"], capture_output=True, text=True)
    if conf_edited or committed.returncode != 0:
        return yaml.safe_load((ROOT / "params.yaml").read_text())
    return yaml.safe_load(committed.stdout)


def test_params_yaml_is_the_composed_default():
    assert default_params() == _params_yaml()


def test_paper_profile_is_the_papers_grid():
    cfg = parse_params(default_params("profile=paper"))
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


def test_overrides_are_validated_at_composition():
    """hydra_plugins/mollify_overrides.py (found by Hydra on the repository's path, as DVC puts it
    there) validates the composed params: a misspelled key or a bad value gets mollify's message."""
    with pytest.raises(InvalidArgumentError, match=r"  - train\.epoch: unknown key \(did you mean 'train\.epochs'\?\)"):
        default_params("train.epoch=3")
    with pytest.raises(InvalidArgumentError, match=r"  - methods: List should have at least 1 item"):
        default_params("methods=[]")
    assert default_params("train.epochs=3")["train"]["epochs"] == 3


@pytest.mark.parametrize(("profile", "model", "schedule"), [
    ("nfm", "preact_resnet18_nfm", "step"), ("softaug", "resnet18", "cosine"), ("smoothing", "resnet18", "step"),
])
def test_method_profiles_compose_and_validate(profile, model, schedule):
    cfg = parse_params(default_params(f"profile={profile}"))
    assert (cfg.train.model, cfg.train.schedule) == (model, schedule)
    assert not cfg.train.drop_last  # every release's DataLoader keeps the last partial batch
    for method in cfg.methods:
        cfg.recipe(method)
    if profile == "nfm":
        assert cfg.recipe("nfm_recipe").nfm.add_level == 0.4
        assert cfg.model_name("nfm_recipe", "cifar10") == "preact_resnet18_nfm"
        assert cfg.model_name("nfm_recipe", "cifar100") == "preact_wide_resnet18_nfm"
    if profile == "smoothing":
        assert cfg.train.milestones == [61, 121, 161] and cfg.train.lr_decay == 0.2
        assert cfg.recipe("smooth_mcdo").mc_dropout == 0.3 and cfg.recipe("smooth_mcdo").smoothing
        assert cfg.evaluate.ece_bins == 10 and (cfg.evaluate.mc_samples, cfg.evaluate.mc_samples_corrupted) == (50, 1)
    if profile == "softaug":  # the release: EPOCH + 1 = 501 epochs, the last 21 without soft crop
        assert cfg.train.epochs == 501
        for method in ("softaug_recipe", "randaug_softaug"):
            softaug = cfg.recipe(method).softaug
            assert (softaug.final_epochs_without, softaug.confidence_weight) == (21, "batch_mean")


def test_nfm_profile_decays_the_lr_after_epochs_100_150_180_as_the_release():
    """The release's lr_scheduler runs at the end of each epoch: epochs 0..100 at 0.1, 101..150 at 0.01, ..."""
    cfg = parse_params(default_params("profile=nfm")).train
    lr = [learning_rate(e, cfg.epochs, 0, cfg.lr, cfg.schedule, tuple(cfg.milestones), cfg.lr_decay) for e in range(cfg.epochs)]
    expected = [0.1] * 101 + [0.01] * 50 + [0.001] * 30 + [0.0001] * 19
    assert lr == pytest.approx(expected, rel=1e-12)


def test_paper_profile_runs_as_the_reference():
    cfg = parse_params(default_params("profile=paper"))
    assert (cfg.train.schedule, cfg.train.schedule_unit, cfg.train.drop_last) == ("cosine", "epoch", False)
    assert (cfg.evaluate.ece_bins, cfg.evaluate.ece_batch_size) == (15, 100)
    jsd = cfg.recipe("fcr_augmix_diffaug")
    assert jsd.augmix_jsd and jsd.diffaug and not cfg.recipe("fcr_augmix").augmix_jsd


@pytest.mark.parametrize("profile", ["paper", "nfm", "softaug", "smoothing"])
def test_profiles_evaluate_on_the_official_release_and_the_15_standard_corruptions(profile):
    corrupt = parse_params(default_params(f"profile={profile}")).corrupt
    assert corrupt.source == "official" and corrupt.max_images is None
    assert corrupt.corruptions == [
        "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
        "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression",
    ]
    assert parse_params(default_params()).corrupt.source == "generate"  # the demo keeps its generated 19


@pytest.mark.parametrize(("profile", "precision", "diffaug_precision", "paper_ece", "softmax", "fill"), [
    (None, "auto", "fp32", "ece", "fp64", "mean"),  # ours: the demo
    ("paper", "auto", "fp16", "ece_batch_mean", "fp32", "mean"),  # Lightning bf16-mixed; DiffAug's fp16 UNet
    ("nfm", "fp32", "fp32", "ece", "fp32", "mean"),
    ("softaug", "fp32", "fp32", "ece_right_closed", "fp32", "mean"),
    ("smoothing", "fp32", "fp32", "ece_reference", "fp32", "mean"),
])
def test_each_profile_computes_and_reports_as_its_release(profile, precision, diffaug_precision, paper_ece, softmax, fill):
    cfg = parse_params(default_params(*([f"profile={profile}"] if profile else [])))
    assert (cfg.train.precision, cfg.train.diffaug_precision) == (precision, diffaug_precision)
    assert (cfg.evaluate.paper_ece, cfg.evaluate.softmax, cfg.evaluate.occlusion.fill) == (paper_ece, softmax, fill)


def test_the_paper_profiles_ddpm_trains_as_ho_et_al():
    diffusion = parse_params(default_params("profile=paper")).diffusion
    assert (diffusion.unet, diffusion.lr, diffusion.grad_clip, diffusion.warmup_steps) == ("ddpm_cifar10", 2e-4, 1.0, 5000)
    assert parse_params(default_params("profile=paper")).corrupt.tiny_c_order == "class"  # process-datasets.py's order
    assert parse_params(default_params()).corrupt.tiny_c_order == "file"
    assert parse_params(default_params("profile=paper")).corrupt.tiny_c_release == "original"  # download-datasets.sh:8
    assert parse_params(default_params()).corrupt.tiny_c_release == "fixed"
    demo = parse_params(default_params()).diffusion
    assert (demo.grad_clip, demo.warmup_steps) == (None, 0)  # the demo's small UNet: its own


def test_study_profile_pairs_every_method_with_its_control():
    cfg = parse_params(default_params("profile=study"))
    assert len(cfg.seeds) >= 3 and cfg.train.epochs == 30
    assert cfg.pairs() == [("fcr_mollify", "fcr"), ("nfm", "baseline"), ("softaug", "baseline"), ("smooth", "baseline"),
                           ("diffaug", "baseline")]


def test_paper_profile_compares_each_mollified_recipe_with_its_base():
    pairs = dict(parse_params(default_params("profile=paper")).pairs())
    assert pairs["fcr_mollify"] == "fcr" and pairs["none_mollify"] == "none" and pairs["fcr_cutmix_mollify"] == "fcr_cutmix"
    assert pairs["fcr_trivaug_mollify_xn"] == "fcr_trivaug" and pairs["fcr_diffaug"] == "fcr"
    assert "fcr_augmix_diffaug" not in pairs  # its JSD loss is a second change: no like-for-like control in the grid
