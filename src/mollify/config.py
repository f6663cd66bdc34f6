"""The one place where params.yaml becomes typed, validated configuration.

Every section is a frozen pydantic model with ``extra="forbid"``: `dvc exp run -S` silently adds a
misspelled key to params.yaml, and this is where it is caught, with one message naming the key.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from mollify.augment.soft_augmentation import RELEASE_FINAL_EPOCHS_WITHOUT, soft_crop_off_from
from mollify.corruptions.names import EXTRA, STANDARD
from mollify.data.datasets import DATASETS
from mollify.errors import MollifyError
from mollify.models import MODELS

PositiveInt = Annotated[int, Field(gt=0)]
Severity = Annotated[int, Field(ge=1, le=5)]
Augmentation = Literal["flip", "crop", "rotate", "trivaug", "randaug", "autoaug", "augmix", "mixup", "cutmix"]


_RECIPE_KEYS = "Methods are the keys of `recipes` in params.yaml"


class Section(BaseModel):
    # allow_inf_nan=False: `inf`, `.inf`, `1e400` and `nan` are refused for every float key, where any
    # other out-of-range value is (an infinite learning rate would otherwise only show as a diverged run)
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class DemoDataConfig(Section):
    train_size: PositiveInt = Field(10_000, description="images in the synthetic train split")
    test_size: PositiveInt = Field(2_000, description="images in the synthetic test split")
    design: Literal["cifar_like", "quick"] = Field(
        "cifar_like", description="the rendering (mollify.data.synthetic.DESIGNS): cifar_like (meets the data criterion at "
        "the study's scale) or quick (learned in the quick demo's schedule; its profile misses the criterion)")


class DataConfig(Section):
    download_dir: str = Field("data/downloads", description="where archives from the canonical URLs are kept")
    mirror: str | None = Field(None, description="fetch archives from <mirror>/<file name> instead of the canonical URL")
    demo: DemoDataConfig = DemoDataConfig()


class CorruptConfig(Section):
    source: Literal["generate", "official"] = Field(
        "generate", description="generate locally, or download the official CIFAR-10-C / CIFAR-100-C / Tiny-ImageNet-C"
    )
    corruptions: list[str] = Field(min_length=1)
    severities: list[Severity] = [1, 2, 3, 4, 5]
    max_images: PositiveInt | None = Field(None, description="corrupt only the first N test images (None: all)")
    batch_size: PositiveInt = 1000
    tiny_c_order: Literal["file", "class"] = Field(
        "file", description="order of the official Tiny-ImageNet-C images: file (by file name, ours: the first N mix the "
        "classes) or class (sorted wnids, 50 images each: the mollification reference's, on which its batch-mean ECE depends)")
    tiny_c_release: Literal["fixed", "original"] = Field(
        "fixed", description="which Tiny-ImageNet-C: fixed (the re-upload, zenodo 8206060) or original (zenodo 2536630, "
        "the mollification reference's: its frost folder holds 1000 classes and other images, read class by class)")

    @field_validator("corruptions")
    @classmethod
    def _known_corruptions(cls, names: list[str]) -> list[str]:
        return _check_members(names, STANDARD + EXTRA, "corruption")

    @field_validator("severities")
    @classmethod
    def _sorted_unique(cls, severities: list[int]) -> list[int]:
        return sorted(set(severities))

    @model_validator(mode="after")
    def _original_release_by_class(self) -> CorruptConfig:
        if self.tiny_c_release == "original" and self.tiny_c_order != "class":
            raise ValueError("corrupt.tiny_c_release=original needs corrupt.tiny_c_order=class: its frost folder holds other "
                             "images than the other corruptions, so only the class-by-class order gives them the same "
                             "labels; set tiny_c_order: class, or tiny_c_release: fixed")
        return self


class TrainConfig(Section):
    model: str = "small_resnet"
    dataset_models: dict[str, str] = Field(default_factory=dict, description="per-dataset network overriding `model` "
                                           "(NFM: PreActWideResNet-18 on cifar100)")
    epochs: PositiveInt = 15
    batch_size: PositiveInt = 128
    lr: float = Field(0.1, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    nesterov: bool = True
    weight_decay: float = Field(5e-4, ge=0)
    warmup_epochs: int = Field(0, ge=0)
    schedule: Literal["cosine", "step"] = Field("cosine", description="cosine to 0, or x lr_decay at each milestone")
    schedule_unit: Literal["step", "epoch"] = Field(
        "step", description="the schedule moves every step, or once per epoch (cosine T_max = epochs, as the mollification reference)")
    drop_last: bool = Field(True, description="drop the last partial batch of each epoch (the mollification reference keeps it)")
    milestones: list[PositiveInt] = Field(default_factory=list, description="epochs of the step schedule's decays")
    lr_decay: float = Field(0.1, gt=0, le=1)
    crop_padding: int = Field(4, ge=0)
    rotation_degrees: float = Field(15.0, ge=0, le=180)
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    diffaug_precision: Literal["fp32", "fp16", "bf16"] = Field(
        "fp32", description="the diffusion UNet's noise prediction in DiffAug, the DiffAug Ensemble and certification: "
        "fp32 (ours; TF32 off, so the one-step estimate is fp32's), fp16 (the DiffAug release's), bf16 (its rounding, "
        "amplified by 1/sqrt(abar_t) in the estimate, is 8x fp16's: docs/fidelity.md)")
    channels_last: bool = True
    compile: bool = Field(False, description="torch.compile the network for training (a one-off compile cost; "
                          "on CPU it needs a C compiler)")

    @field_validator("model")
    @classmethod
    def _known_model(cls, name: str) -> str:
        return _check_member(name, MODELS, "model")

    @field_validator("dataset_models")
    @classmethod
    def _known_dataset_models(cls, models: dict[str, str]) -> dict[str, str]:
        _check_members(list(models), DATASETS, "dataset")
        _check_members(list(models.values()), MODELS, "model")
        return models


class MollifyConfig(Section):
    """Supervised mollification (augment/mollification.py): roles, t ~ Beta(alpha, beta), label coupling."""

    roles: str = Field("xnb", pattern="^[xnbe]+$", description="per-sample roles: x clean, n noise, b blur, e pure noise")
    alpha: float = Field(1.0, gt=0)
    beta: float = Field(2.0, gt=0)
    label_mode: Literal["ls", "ld", "la", "lm"] = "ls"
    npow: float = Field(1.0, gt=0, description="gamma_noise = sin^2(pi t / 2)^npow")
    bpow: float = Field(1.0, gt=0, description="gamma_blur = t^bpow")
    combined: bool = Field(False, description="the pseudo-code variant: blur then noise on one image with one t")


class NFMConfig(Section):
    """Noisy Feature Mixup (augment/nfm.py); levels 0 = (manifold) mixup."""

    alpha: float = Field(1.0, ge=0, description="lam ~ Beta(alpha, alpha); 0: no mixing (and no noise)")
    add_level: float = Field(0.4, ge=0)
    mult_level: float = Field(0.2, ge=0)
    manifold: bool = Field(True, description="mix at the input or after a random residual stage")


class SoftAugConfig(Section):
    """Soft Augmentation's soft crop (augment/soft_augmentation.py)."""

    sigma_crop: float = Field(12.0, gt=0, description="crop offsets ~ N(0, sigma_crop) pixels")
    power: float = Field(2.0, gt=0, description="p = 1 - (1 - 1/K)(1 - visible)^power")
    background: float = Field(0.01, ge=0)
    confidence_weight: Literal["batch_mean", "per_sample", "none"] = Field(
        "batch_mean", description="loss weight: the batch mean of p (the released code), each sample's p (the paper), or none")
    final_epochs_without: int = Field(RELEASE_FINAL_EPOCHS_WITHOUT, ge=0, description="last epochs with the soft crop off (reference fine-tune: 21 of 501), "
                                      "never more than the last 95%")


class DiffusionConfig(Section):
    """The diffusion model behind DiffAug (mollify/diffusion/model.py): trained on the train split, or a
    pretrained diffusers UNet2DModel (epsilon prediction, linear betas 1e-4..0.02, T = 1000)."""

    pretrained: str | None = Field(None, description="local diffusers directory or hub id (None: train one here)")
    download: bool = Field(False, description="allow fetching `pretrained` from the Hugging Face hub")
    unet: Literal["demo", "ddpm_cifar10"] = Field("demo", description="UNet2DModel configuration to train")
    steps: PositiveInt = 600
    batch_size: PositiveInt = 64
    lr: float = Field(2e-4, gt=0, description="Adam learning rate (DDPM: 2e-4)")
    ema_decay: float = Field(0.999, ge=0, lt=1, description="EMA of the weights (DDPM: 0.9999)")
    grad_clip: float | None = Field(None, gt=0, description="clip the gradients' global norm to this (Ho et al.: 1.0, "
                                    "scripts/run_cifar.py:134); None: no clipping")
    warmup_steps: int = Field(0, ge=0, description="linear learning-rate warm-up lr min(step / warmup_steps, 1) "
                              "(Ho et al.: 5000); 0: none")
    eval_every: PositiveInt = Field(100, description="held-out denoising MSE every N steps (and a checkpoint)")
    eval_images: PositiveInt = Field(500, description="held-out test images for the denoising MSE")


    @model_validator(mode="after")
    def _warmup_within_training(self) -> "DiffusionConfig":
        if self.pretrained is None and self.warmup_steps >= self.steps:
            raise ValueError(f"warmup_steps={self.warmup_steps} is not below steps={self.steps}: the learning rate would "
                             f"never reach diffusion.lr; lower diffusion.warmup_steps")
        return self


class MethodConfig(Section):
    """A named recipe: base augmentations, at most one batch-level robustness method
    (mollify | nfm | softaug | diffaug), model options, loss (+ model override)."""

    augment: list[Augmentation] = Field(default_factory=list)
    mollify: MollifyConfig | None = None
    nfm: NFMConfig | None = None
    softaug: SoftAugConfig | None = None
    diffaug: bool = Field(False, description="train on the clean images + DiffAug of the un-augmented images (CE + CE)")
    augmix_jsd: bool = Field(False, description="AugMix with its Jensen-Shannon consistency loss: two AugMix views, weight 12")
    augmix_jsd_ops: Literal["release", "torchvision"] = Field(
        "release", description="the JSD views' AugMix: release = the AugMix release's 9 operations with continuous levels "
        "(as the DiffAug release's AugMix + DiffAug imports them); torchvision = torchvision's AugMix (13 operations, "
        "brightness / color / contrast / sharpness among them, discrete magnitude bins), as the `augmix` augmentation")
    smoothing: bool = Field(False, description="TanhBlur spatial smoothing after each stage")
    mc_dropout: float = Field(0.0, ge=0, lt=1, description="test-time dropout rate in each block (0: off)")
    loss: Literal["ce", "nce", "bce"] = "ce"
    model: str | None = None
    control: str | None = Field(None, description="the recipe this one is compared with: the same augmentations, loss and "
                                "network, without this recipe's robustness method (the report's verdicts are per pair)")

    @model_validator(mode="after")
    def _compatible(self) -> MethodConfig:
        chosen = [name for name in ("mollify", "nfm", "softaug") if getattr(self, name) is not None]
        chosen += ["diffaug"] * self.diffaug
        if len(chosen) > 1:
            raise ValueError(f"at most one batch-level robustness method per recipe, got {' + '.join(chosen)}")
        if chosen and chosen[0] in ("nfm", "softaug") and self.mix:
            raise ValueError(f"{chosen[0]} does its own mixing or target softening; remove {self.mix} from augment")
        if self.softaug is not None and "crop" in self.augment:
            raise ValueError("softaug replaces the standard random crop; remove crop from augment")
        if self.augmix_jsd and "augmix" not in self.augment:
            raise ValueError("augmix_jsd needs augmix in augment")
        if self.augmix_jsd and (self.mix or set(chosen) - {"diffaug"}):
            raise ValueError(f"augmix_jsd combines with diffaug only, not with {self.mix or chosen[0]}")
        return self

    @field_validator("model")
    @classmethod
    def _known_model(cls, name: str | None) -> str | None:
        return name if name is None else _check_member(name, MODELS, "model")

    @field_validator("augment")
    @classmethod
    def _one_mix(cls, names: list[str]) -> list[str]:
        if "mixup" in names and "cutmix" in names:
            raise ValueError("mixup and cutmix exclude each other (one batch-level mix per recipe)")
        return names

    @property
    def mix(self) -> str | None:
        return next((name for name in self.augment if name in ("mixup", "cutmix")), None)

    def differs_from_control(self, control: MethodConfig) -> list[str]:
        """What this recipe changes besides its robustness method when compared with `control` (empty
        for a like-for-like pair): the augmentations (Soft Augmentation's soft crop replaces the
        control's crop), the loss, the network, AugMix's JSD loss; or that it changes no method at all."""
        ours = [a for a in self.augment if not (self.softaug is not None and a == "crop")]
        theirs = [a for a in control.augment if not (self.softaug is not None and a == "crop")]
        problems = [f"augment {self.augment} vs {control.augment}"] if ours != theirs else []
        problems += [f"{key} {getattr(self, key)!r} vs {getattr(control, key)!r}" for key in ("loss", "model", "augmix_jsd")
                     if getattr(self, key) != getattr(control, key)]
        if all(getattr(self, key) == getattr(control, key) for key in ROBUSTNESS_METHODS):
            problems.append(f"no robustness method differs (one of {', '.join(ROBUSTNESS_METHODS)})")
        return problems


# the recipe fields that make a robustness method: what a recipe may change against its control
ROBUSTNESS_METHODS = ("mollify", "nfm", "softaug", "diffaug", "smoothing", "mc_dropout")


class DiffAugEnsembleConfig(Section):
    """DiffAug Ensemble (test time): softmax averaged over members t = 0, step, ..., max_t."""

    step: PositiveInt = Field(50, description="spacing of the member timesteps (released default 50)")
    max_t: int = Field(450, ge=0, lt=1000)
    corrupted_images: PositiveInt | None = Field(None, description="first N images of each corrupted set (None: all); "
                                                 "the clean test set is used whole")
    entropy_step: PositiveInt = Field(100, description="predictive entropy of DiffAug images at t = 0, step, ... (paper Fig. 2)")
    entropy_images: PositiveInt = Field(200, description="test images for the entropy curve")


class SweepConfig(Section):
    """A test-time perturbation swept over strengths (mollify.evaluation.perturbations); level 0 is the clean evaluation."""

    enabled: bool = False
    images: PositiveInt | None = Field(None, description="first N clean test images (None: all)")
    levels: list[Annotated[float, Field(ge=0)]]


class PixelSweepConfig(SweepConfig):
    levels: list[Annotated[int, Field(ge=0)]]


class OcclusionConfig(PixelSweepConfig):
    fill: Literal["mean", "black"] = Field(
        "mean", description="the hole's colour: mean = the dataset's normalisation mean, 0 in normalised space, as the "
        "Soft Augmentation release's Cutout after Normalize (cifar/utils.py:302-305); black = 0 in [0, 1] (ours)")


class OODConfig(Section):
    """Out-of-distribution detection (mollify.evaluation.ood): the test set against the `ood` stage's sets."""

    enabled: bool = False
    images: PositiveInt | None = Field(None, description="first N images of the test set and of each OOD set (None: all)")


class CertifyConfig(Section):
    """Certified l2 accuracy by denoised randomized smoothing (mollify.evaluation.certify; Carlini et al.'s defaults)."""

    enabled: bool = False
    every: PositiveInt = Field(10, description="certify every k-th test image (Carlini et al.: 10, 1,000 CIFAR-10 images)")
    sigmas: list[Annotated[float, Field(gt=0, le=50)]] = [0.25, 0.5, 1.0]
    n0: PositiveInt = Field(100, description="noise draws to select the top class")
    n: PositiveInt = Field(100_000, description="noise draws to bound its probability")
    alpha: float = Field(0.001, gt=0, lt=0.5, description="failure probability of the certificate")
    batch_size: PositiveInt = 1000
    radii: list[Annotated[float, Field(ge=0)]] = Field([0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5],
                                                       description="l2 radii of the certified-accuracy table")


class EvaluateConfig(Section):
    batch_size: PositiveInt = 1000
    ece_bins: PositiveInt = 15
    ece_batch_size: PositiveInt | None = Field(None, description="also `ece_batch_mean`: the ECE of each batch of this size, "
                                               "averaged (the mollification reference: 100); None: off")
    paper_ece: Literal["ece", "ece_batch_mean", "ece_right_closed", "ece_reference"] = Field(
        "ece", description="the ECE variant the profile's paper reports, computed beside ours (`ece`), shown in its own "
        "column of plots/results.md and compared with the published ECE: ece_batch_mean (mollification, needs "
        "ece_batch_size), ece_right_closed (Soft Augmentation: 10 bins (a, b]), ece_reference (spatial smoothing: "
        "counted in (a, b], summed in [a, b)); ece: ours only")
    softmax: Literal["fp64", "fp32"] = Field(
        "fp64", description="precision of the softmax of the logits: fp64 (ours: a confidence reaches 1.0 only past a "
        "logit gap of ~37) or fp32 (the releases' softmax: 1.0 past a gap of ~17, which their ECE and OpenOOD's MSP see)")
    mc_samples: PositiveInt = Field(10, description="stochastic passes averaged for MC-dropout models (clean test set)")
    mc_samples_corrupted: PositiveInt = Field(10, description="... on the corrupted sets (the smoothing reference: 1)")
    mc_sweep: list[PositiveInt] = Field([1, 2, 5, 10, 50], description="clean-set metrics for each n (MC-dropout models)")
    diffaug_ensemble: DiffAugEnsembleConfig = DiffAugEnsembleConfig()
    # the comparison papers' other evaluations (each off unless switched on)
    occlusion: OcclusionConfig = Field(OcclusionConfig(levels=[0, 8, 12, 16, 20, 24, 28, 32]),
                                        description="Soft Augmentation: Cutout hole side in pixels")
    crop: PixelSweepConfig = Field(PixelSweepConfig(levels=[0, 4, 8, 12, 16]),
                                   description="Soft Augmentation: RandomCrop padding in pixels")
    white_noise: SweepConfig = Field(SweepConfig(levels=[0, 0.02, 0.04, 0.06, 0.08, 0.1, 0.12, 0.15, 0.18, 0.2, 0.25, 0.3, 0.35]),
                                     description="NFM: std of Gaussian noise on the standardised image")
    salt_pepper: SweepConfig = Field(SweepConfig(levels=[0, 0.02, 0.04, 0.06, 0.08, 0.1, 0.12, 0.15, 0.18, 0.2, 0.25, 0.3, 0.35]),
                                     description="NFM: salt-and-pepper amount")
    ood: OODConfig = OODConfig()
    certify: CertifyConfig = CertifyConfig()
    deep_ensemble: bool = Field(False, description="spatial smoothing's deep ensembles: clean metrics of the ensemble of "
                                "the first k training seeds' models, k = 1 .. len(seeds)")

    @model_validator(mode="after")
    def _batch_mean_needs_its_batches(self) -> "EvaluateConfig":
        if self.paper_ece == "ece_batch_mean" and self.ece_batch_size is None:
            raise ValueError("paper_ece=ece_batch_mean needs evaluate.ece_batch_size (the mollification reference: 100)")
        return self

    @field_validator("salt_pepper")
    @classmethod
    def _amounts_are_fractions(cls, sweep: SweepConfig) -> SweepConfig:
        if any(level > 1 for level in sweep.levels):
            raise ValueError("salt-and-pepper amounts are fractions of the pixels: each level must be at most 1")
        return sweep


class Params(Section):
    seed: int = Field(0, ge=0, description="data generation, corruption noise, the diffusion model, evaluation noise")
    seeds: list[Annotated[int, Field(ge=0)]] = Field([0], min_length=1, description="training seeds: every recipe is "
                                                     "trained once per seed (initialisation, batches, augmentation draws)")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    datasets: list[str] = Field(min_length=1)
    methods: list[str] = Field(min_length=1)
    diffaug_methods: list[str] = Field([], description="recipes with diffaug: their train stage depends on the diffusion model")
    data: DataConfig = DataConfig()
    corrupt: CorruptConfig
    train: TrainConfig = TrainConfig()
    recipes: dict[str, MethodConfig]
    evaluate: EvaluateConfig = EvaluateConfig()
    diffusion: DiffusionConfig = DiffusionConfig()

    @field_validator("seeds", "datasets", "methods", "diffaug_methods")
    @classmethod
    def _listed_once(cls, items: list[Any], info: ValidationInfo) -> list[Any]:
        repeated = sorted({str(item) for item in items if items.count(item) > 1})
        if repeated:
            what = {"seeds": "seed", "datasets": "dataset"}.get(info.field_name, "method")
            raise ValueError(f"{info.field_name} lists {what} {', '.join(repeated)} more than once: each {what} names "
                             "one set of stage runs, list each once")
        return items

    @field_validator("datasets")
    @classmethod
    def _known_datasets(cls, names: list[str]) -> list[str]:
        return _check_members(names, DATASETS, "dataset")

    @model_validator(mode="after")
    def _methods_have_recipes(self) -> Params:
        _check_members(self.methods + self.diffaug_methods, self.recipes, "method", _RECIPE_KEYS)
        for name in self.methods:
            if self.recipes[name].diffaug:
                raise ValueError(f"method {name!r} uses DiffAug: list it under `diffaug_methods` (its train stage "
                                 "depends on the diffusion model), not under `methods`")
        for name in self.diffaug_methods:
            if not self.recipes[name].diffaug:
                raise ValueError(f"method {name!r} in `diffaug_methods` does not use DiffAug: move it to `methods`")
        return self

    @model_validator(mode="after")
    def _pairs_like_for_like(self) -> Params:
        for name in self.all_methods:
            control = self.recipes[name].control
            if control is None:
                continue
            if control == name or control not in self.recipes:
                raise ValueError(f"recipes.{name}.control={control!r} must name another recipe (one of "
                                 f"{', '.join(k for k in self.recipes if k != name)})")
            problems = self.recipes[name].differs_from_control(self.recipes[control])
            if problems:
                raise ValueError(f"recipes.{name}.control={control!r} is no like-for-like control: {'; '.join(problems)}. "
                                 f"A pair differs only in the robustness method: give both the same augment, loss and model")
        return self

    def pairs(self) -> list[tuple[str, str]]:
        """(method, control) for each listed method whose control is listed too, in the order of `all_methods`."""
        return [(m, c) for m in self.all_methods if (c := self.recipes[m].control) in self.all_methods]

    @property
    def all_methods(self) -> list[str]:
        return self.methods + self.diffaug_methods

    @model_validator(mode="after")
    def _soft_crop_on_for_some_epoch(self) -> Params:
        for name in self.all_methods:
            softaug = self.recipes[name].softaug
            if softaug is not None and soft_crop_off_from(self.train.epochs, softaug.final_epochs_without) <= 0:
                raise ValueError(f"recipes.{name}.softaug.final_epochs_without={softaug.final_epochs_without} turns the soft "
                                 f"crop off for all {self.train.epochs} epochs; lower it or raise train.epochs")
        return self

    @model_validator(mode="after")
    def _official_corruptions_exist(self) -> Params:
        if self.corrupt.source == "official" and "demo" in self.datasets:
            raise ValueError("corrupt.source=official: the demo dataset has no official corrupted set; use corrupt.source=generate")
        return self

    def recipe(self, method: str) -> MethodConfig:
        try:
            return self.recipes[_check_member(method, self.recipes, "method", _RECIPE_KEYS)]
        except ValueError as e:
            raise MollifyError(str(e)) from None

    def model_name(self, method: str, dataset: str) -> str:
        """The recipe's `model`, else the dataset's entry of `train.dataset_models`, else `train.model`."""
        return self.recipe(method).model or self.train.dataset_models.get(dataset, self.train.model)


def _check_member(name: str, choices: Any, what: str, choices_are: str = "Choices") -> str:
    if name not in choices:
        close = difflib.get_close_matches(name, list(choices), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown {what} {name!r}.{hint} {choices_are}: {', '.join(sorted(choices))}")
    return name


def _check_members(names: list[str], choices: Any, what: str, choices_are: str = "Choices") -> list[str]:
    for name in names:
        _check_member(name, choices, what, choices_are)
    return names


def _describe(error: dict[str, Any]) -> str:
    key = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        parent_fields = _fields_at(error["loc"][:-1])
        close = difflib.get_close_matches(str(error["loc"][-1]), parent_fields, n=1)
        hint = f" (did you mean {'.'.join(map(str, error['loc'][:-1] + (close[0],)))!r}?)" if close else ""
        return f"{key}: unknown key{hint}; remove it or fix its spelling"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "missing":
        return f"{key}: required key is missing"
    if not key:  # a check across sections
        return message
    if error["type"] == "finite_number":
        return f"{key}: must be a finite number, not {error['input']!r} (inf, .inf, 1e400 and nan are refused for every float key)"
    return f"{key}: {message} (got {error['input']!r})"


def _fields_at(loc: tuple[Any, ...]) -> list[str]:
    """The valid keys at a location of params.yaml (to suggest a spelling for an unknown key)."""
    model: Any = Params
    inside_dict = False
    for part in loc:
        if inside_dict:  # `part` is a user-chosen key such as a recipe name
            inside_dict = False
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        model = field.annotation
        if get_origin(model) is dict:
            model, inside_dict = get_args(model)[1], True
        # an optional section (`MollifyConfig | None`): the model among the union's members
        model = next((arg for arg in get_args(model) if hasattr(arg, "model_fields")), model)
    return list(getattr(model, "model_fields", {}))


def parse_params(raw: Any, source: str = "params.yaml") -> Params:
    """Validate a params mapping; every problem is listed in one MollifyError naming its key."""
    if not isinstance(raw, dict):
        raise MollifyError(f"{source}: expected a mapping of sections at the top level, got {type(raw).__name__}")
    try:
        return Params.model_validate(raw)
    except ValidationError as e:
        problems = "\n".join(f"  - {_describe(err)}" for err in e.errors())
        raise MollifyError(f"{source}: invalid parameters:\n{problems}") from None


def load_params(path: str | Path = "params.yaml", *, dataset: str | None = None, method: str | None = None,
                seed: int | None = None) -> Params:
    """The validated params of `path`; a stage CLI also passes the run it was asked for, which must be
    one that the params list (else the run's outputs would be ones no stage of dvc.yaml declares)."""
    path = Path(path)
    if not path.is_file():
        raise MollifyError(f"params file {path} not found: run from the repository root or pass --params "
                           f"(`git checkout -- {path}` restores the committed one).")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise MollifyError(f"{path}: not valid YAML ({e})") from None
    if raw is None:
        raise MollifyError(f"{path} is empty: `git checkout -- {path}` restores the committed one "
                           "(or write the sections: datasets, methods, recipes, corrupt, ...).")
    cfg = parse_params(raw, str(path))
    if method is not None:
        cfg.recipe(method)  # an unknown recipe name: the message that lists the recipes
    for option, value, key, listed in (("dataset", dataset, "datasets", cfg.datasets),
                                       ("method", method, "methods` or `diffaug_methods", cfg.all_methods),
                                       ("seed", seed, "seeds", cfg.seeds)):
        if value is not None and value not in listed:
            raise MollifyError(f"--{option} {value} is not in `{key}` of {path} (listed: {', '.join(map(str, listed))}): "
                               f"choose one of those, or add it to `{key.split('`')[0]}` to run it.")
    return cfg
