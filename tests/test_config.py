import copy

import pytest
import yaml

from mollify.config import load_params, parse_params
from mollify.errors import MollifyError
from tests.conftest import call_stage, default_params, run_stage, tiny_params


def _raw() -> dict:
    return default_params()


def _error(raw: dict) -> str:
    with pytest.raises(MollifyError) as e:
        parse_params(raw)
    return str(e.value)


def test_default_params_are_valid(tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(default_params()))
    cfg = load_params(tmp_path / "params.yaml")
    assert cfg.datasets == ["demo"]
    assert {"baseline", "fcr", "fcr_mollify"} <= set(cfg.methods)
    assert cfg.diffaug_methods == ["diffaug"] and len(cfg.seeds) >= 3
    assert cfg.pairs() == [("fcr_mollify", "fcr"), ("diffaug", "baseline")]
    assert cfg.recipes["mollify"] == cfg.recipes["fcr_mollify"]  # the earlier name of the same recipe


@pytest.mark.parametrize("change, message", [
    (lambda r: r["recipes"]["fcr_mollify"].update(control="nope"), "recipes.fcr_mollify.control='nope' must name another recipe"),
    (lambda r: r["recipes"]["fcr_mollify"].update(control="fcr_mollify"), "must name another recipe"),
    (lambda r: r["recipes"]["fcr_mollify"].update(control="baseline"),
     "recipes.fcr_mollify.control='baseline' is no like-for-like control: augment ['flip', 'crop', 'rotate'] vs ['flip', 'crop']"),
    (lambda r: r["recipes"]["fcr_mollify"].update(loss="nce"), "is no like-for-like control: loss 'nce' vs 'ce'"),
    (lambda r: r["recipes"]["fcr_mollify"].update(model="resnet18"), "model 'resnet18' vs None"),
    (lambda r: r["recipes"]["fcr_mollify"].pop("mollify"), "no robustness method differs"),
])
def test_a_pair_differs_only_in_the_robustness_method(change, message):
    raw = _raw()
    change(raw)
    assert message in _error(raw)


def test_soft_augmentation_may_replace_its_controls_crop():
    raw = _raw()
    raw["methods"] = ["baseline", "softaug", "smooth", "smooth_mcdo"]
    cfg = parse_params(raw)
    assert cfg.pairs() == [("softaug", "baseline"), ("smooth", "baseline"), ("smooth_mcdo", "smooth"), ("diffaug", "baseline")]
    raw["recipes"]["softaug"]["augment"] = ["flip", "rotate"]
    assert "augment ['flip', 'rotate'] vs ['flip', 'crop']" in _error(raw)


def test_diffaug_recipes_go_under_diffaug_methods():
    raw = _raw()
    raw["methods"] = ["baseline", "diffaug"]
    assert "method 'diffaug' uses DiffAug: list it under `diffaug_methods`" in _error(raw)
    raw["methods"], raw["diffaug_methods"] = ["mollify"], ["baseline"]
    message = _error(raw)
    assert "'baseline' in `diffaug_methods` does not use DiffAug" in message
    assert "got {" not in message  # a whole-params problem does not echo all of params.yaml


def test_diffaug_is_one_batch_level_method():
    raw = _raw()
    raw["recipes"]["baseline"]["mollify"] = {}
    raw["recipes"]["baseline"]["diffaug"] = True
    assert "at most one batch-level robustness method per recipe, got mollify + diffaug" in _error(raw)


def test_hub_model_is_never_fetched_implicitly():
    from mollify.diffusion.model import load_unet

    with pytest.raises(MollifyError, match="set diffusion.download: true"):
        load_unet("google/ddpm-cifar10-32")


def test_misspelled_key_is_named_with_a_suggestion():
    raw = _raw()
    raw["train"]["epoch"] = 3  # what `dvc exp run -S train.epoch=3` silently adds
    message = _error(raw)
    assert "train.epoch: unknown key" in message
    assert "did you mean 'train.epochs'" in message


def test_misspelled_key_inside_a_recipe():
    raw = _raw()
    raw["recipes"]["baseline"]["augmnt"] = ["flip"]
    assert "recipes.baseline.augmnt: unknown key" in _error(raw)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("train.epochs", 0, "train.epochs: Input should be greater than 0 (got 0)"),
        ("train.lr", "fast", "train.lr: Input should be a valid number"),
        ("train.momentum", 1.5, "train.momentum: Input should be less than 1"),
        ("corrupt.severities", [0, 6], "corrupt.severities.0: Input should be greater than or equal to 1"),
        ("train.model", "resnet19", "unknown model 'resnet19'. Did you mean 'resnet18'?"),
        ("corrupt.corruptions", ["gausian_noise"], "Did you mean 'gaussian_noise'?"),
        ("datasets", ["cifar11"], "unknown dataset 'cifar11'"),
        ("methods", ["baselin"], "unknown method 'baselin'. Did you mean 'baseline'? Methods are the keys of `recipes`"),
        ("evaluate.paper_ece", "ece_batch_mean", "paper_ece=ece_batch_mean needs evaluate.ece_batch_size"),
        ("evaluate.paper_ece", "ece_torchmetrics", "evaluate.paper_ece: Input should be 'ece', 'ece_batch_mean'"),
        ("evaluate.softmax", "fp16", "evaluate.softmax: Input should be 'fp64' or 'fp32'"),
        ("diffusion.warmup_steps", 300, "warmup_steps=300 is not below steps=300"),
        ("corrupt.tiny_c_release", "original", "tiny_c_release=original needs corrupt.tiny_c_order=class"),
        ("corrupt.tiny_c_release", "zenodo", "corrupt.tiny_c_release: Input should be 'fixed' or 'original'"),
        ("evaluate.occlusion", {"enabled": True, "levels": [0, 8], "fill": "grey"},
         "evaluate.occlusion.fill: Input should be 'mean' or 'black'"),
    ],
)
def test_bad_values_are_rejected_with_the_key(key, value, expected):
    raw = copy.deepcopy(_raw())
    section, _, leaf = key.rpartition(".")
    (raw[section] if section else raw)[leaf] = value
    assert expected in _error(raw)


def test_unknown_augmentation_in_recipe():
    raw = _raw()
    raw["recipes"]["baseline"]["augment"] = ["flip", "cutout"]
    assert "recipes.baseline.augment.1" in _error(raw)


def test_every_problem_in_one_message():
    raw = _raw()
    raw["train"]["epochs"] = -1
    raw["evaluate"]["ece_bin"] = 10
    message = _error(raw)
    assert "train.epochs" in message and "evaluate.ece_bin" in message


def test_stage_cli_prints_one_clear_message(workdir):
    (workdir / "params.yaml").write_text(yaml.safe_dump(tiny_params(**{"train.epoch": 3})))
    result = run_stage("train", "--dataset", "demo", "--method", "baseline", cwd=workdir, check=False)
    assert result.returncode == 2
    assert "error:" in result.stderr and "train.epoch: unknown key" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_stage_cli_rejects_unknown_method(workdir, monkeypatch, capsys):
    assert call_stage("train", "--dataset", "demo", "--method", "mixupp", monkeypatch=monkeypatch) == 2
    assert "unknown method 'mixupp'" in capsys.readouterr().err


def test_stage_cli_rejects_missing_input(workdir, monkeypatch, capsys):
    assert call_stage("evaluate", "--dataset", "demo", "--method", "baseline", monkeypatch=monkeypatch) == 2
    err = capsys.readouterr().err
    assert "missing file data/demo/clean/meta.json" in err and "dvc repro" in err


def test_missing_params_file(tmp_path):
    with pytest.raises(MollifyError, match="not found"):
        load_params(tmp_path / "nope.yaml")


@pytest.mark.parametrize(("recipe", "message"), [
    ({"augment": ["flip"], "mollify": {}, "nfm": {}}, "at most one batch-level robustness method per recipe, got mollify + nfm"),
    ({"augment": ["flip", "mixup"], "nfm": {}}, "nfm does its own mixing or target softening; remove mixup"),
    ({"augment": ["flip", "crop"], "softaug": {}}, "softaug replaces the standard random crop"),
    ({"augment": ["mixup", "cutmix"]}, "mixup and cutmix exclude each other"),
    ({"augment": ["flip"], "mc_dropout": 1.0}, "recipes.bad.mc_dropout: Input should be less than 1"),
    ({"augment": ["flip"], "augmix_jsd": True}, "augmix_jsd needs augmix in augment"),
    ({"augment": ["augmix", "mixup"], "augmix_jsd": True}, "augmix_jsd combines with diffaug only, not with mixup"),
    ({"augment": ["augmix"], "augmix_jsd": True, "mollify": {}}, "augmix_jsd combines with diffaug only, not with mollify"),
])
def test_incompatible_recipes_are_rejected(recipe, message):
    raw = _raw()
    raw["recipes"]["bad"] = recipe
    assert message in _error(raw)


def _problems(raw: dict) -> list[str]:
    """The listed problems of the one message, each line as the user reads it."""
    return [line.removeprefix("  - ") for line in _error(raw).splitlines()[1:]]


def test_messages_in_full_name_the_key_the_fix_and_a_close_spelling():
    raw = _raw()
    raw["recipes"]["baseline"]["augmnt"] = ["flip"]  # a recipe's key: the recipe name is the user's own
    raw["recipes"]["mollify"]["mollify"]["rols"] = "xn"  # inside an optional section of a recipe
    raw["evaluate"]["zzz"] = 1  # nothing close: no suggestion
    raw["train"]["model"] = "resnet19"
    raw["corrupt"]["corruptions"] = ["gausian_noise"]
    del raw["methods"]
    assert _error(raw).startswith("params.yaml: invalid parameters:\n  - ")
    problems = _problems(raw)
    corruption = next(p for p in problems if p.startswith("corrupt.corruptions"))
    assert corruption.startswith("corrupt.corruptions: unknown corruption 'gausian_noise'. Did you mean 'gaussian_noise'? "
                                 "Choices: brightness, contrast, defocus_blur, ")
    assert sorted(p for p in problems if p != corruption) == sorted([
        "recipes.baseline.augmnt: unknown key (did you mean 'recipes.baseline.augment'?); remove it or fix its spelling",
        "recipes.mollify.mollify.rols: unknown key (did you mean 'recipes.mollify.mollify.roles'?); remove it or fix its spelling",
        "evaluate.zzz: unknown key; remove it or fix its spelling",
        "train.model: unknown model 'resnet19'. Did you mean 'resnet18'? Choices: preact_resnet18, preact_resnet18_nfm, "
        "preact_resnet50, preact_wide_resnet18_nfm, resnet18, small_resnet, wrn28_10 (got 'resnet19')",
        "methods: required key is missing",
    ])


def test_unknown_name_without_a_close_one_gets_the_choices_only():
    raw = _raw()
    raw["train"]["model"] = "zzz"
    assert _problems(raw) == ["train.model: unknown model 'zzz'. Choices: preact_resnet18, preact_resnet18_nfm, "
                              "preact_resnet50, preact_wide_resnet18_nfm, resnet18, small_resnet, wrn28_10 (got 'zzz')"]


def test_recipe_lookup_and_the_network_of_a_dataset():
    raw = _raw()
    raw["train"]["dataset_models"] = {"cifar100": "wrn28_10"}
    cfg = parse_params(raw)
    assert cfg.model_name("baseline", "cifar100") == "wrn28_10"
    assert cfg.model_name("baseline", "demo") == cfg.train.model == "small_resnet"
    with pytest.raises(MollifyError) as e:
        cfg.recipe("mixupp")
    assert str(e.value).endswith("Methods are the keys of `recipes` in params.yaml: " + ", ".join(sorted(cfg.recipes)))


def test_params_file_is_named_in_its_messages_and_read_from_here_by_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(default_params()))
    assert load_params().datasets == ["demo"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [1, 2\n")
    with pytest.raises(MollifyError, match=rf"^{bad}: not valid YAML \("):
        load_params(bad)
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(MollifyError, match=rf"^{bad}: expected a mapping of sections at the top level, got list$"):
        load_params(bad)
    raw = default_params()
    raw["train"]["epochs"] = 0
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(MollifyError, match=rf"^{bad}: invalid parameters:\n  - train.epochs: "):
        load_params(bad)
