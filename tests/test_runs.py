"""Every recipe of the demo trains and evaluates end to end (tiny data, in-process)."""

import numpy as np
import pytest
import torch

from mollify import paths
from mollify.config import parse_params
from mollify.corruptions import corrupt
from mollify.data import load_split, prepare_dataset
from mollify.data.ood import prepare_ood
from mollify.evaluation.run import evaluate_method
from mollify.training.run import train_method
from mollify.diffusion.model import make_unet, save_pipeline
from mollify.io import save_json, save_npy
from tests.conftest import tiny_params

RECIPES = ["baseline", "trivaug", "mollify", "trivaug_mollify", "nfm", "softaug", "smooth", "smooth_mcdo",
           "diffaug", "diffaug_trivaug"]


@pytest.fixture
def prepared(workdir):
    params = tiny_params(**{"train.epochs": 1, "corrupt.corruptions": ["gaussian_noise", "contrast"],
                            "corrupt.severities": [2], "evaluate.mc_samples": 2, "evaluate.mc_samples_corrupted": 1,
                            "evaluate.mc_sweep": [1, 3]})
    cfg = parse_params(params)
    prepare_dataset("demo", paths.clean_dir("demo"), download_dir=workdir, demo_train_size=128, demo_test_size=32)
    x, y = load_split(paths.clean_dir("demo"), "test")
    for name in cfg.corrupt.corruptions:
        save_npy(paths.corrupted_file("demo", name, 2), corrupt(torch.from_numpy(x), name, 2).numpy())
    save_npy(paths.corrupted_dir("demo") / "labels.npy", y)
    save_json(paths.corrupted_dir("demo") / "source.json", {"source": "generated", "seed": 0, "images": len(y)})
    save_pipeline(make_unet("demo", 32), paths.diffusion_dir("demo"))  # untrained: DiffAug and DE only need to run
    prepare_ood("demo", paths.ood_dir("demo"), enabled=True, download_dir=workdir, demo_size=24)
    return cfg


@pytest.mark.parametrize("method", RECIPES)
def test_recipe_trains_and_evaluates(prepared, method):
    history = train_method(prepared, "demo", method, show_progress=False)
    assert len(history) == 1 and np.isfinite(history[0]["train_loss"])
    summary = evaluate_method(prepared, "demo", method)
    assert 0 <= summary["clean"]["err"] <= 1 and summary["corrupted"]["n_corruptions"] == 2
    assert 0 <= summary["diffaug_ensemble"]["ensemble"]["clean"]["err"] <= 1
    if method == "smooth_mcdo":
        assert summary["mc_samples"] == 2 and set(summary["mc_sweep"]) == {"1", "3"}
        assert summary["mc_samples_corrupted"] == 1
    else:
        assert "mc_sweep" not in summary


def test_noise_class_mode_trains_and_is_evaluated_on_the_real_classes(prepared):
    params = prepared.model_dump()
    params["recipes"]["la"] = {"augment": ["flip"], "mollify": {"label_mode": "la"}}
    cfg = parse_params(params)
    train_method(cfg, "demo", "la", show_progress=False)
    state = torch.load(paths.model_file("demo", "la"), weights_only=True)
    assert state["num_classes"] == 11
    assert evaluate_method(cfg, "demo", "la")["clean"]["nll"] > 0


def test_paper_settings_train_and_evaluate_with_jsd_diffaug_and_batch_mean_ece(prepared):
    params = prepared.model_dump()
    params["recipes"]["augmix_diffaug"] = {"augment": ["flip", "augmix"], "augmix_jsd": True, "diffaug": True}
    params["diffaug_methods"] = ["augmix_diffaug"]
    params["train"].update(schedule_unit="epoch", drop_last=False, batch_size=48)  # 128 images: batches 48, 48, 32
    params["evaluate"]["ece_batch_size"] = 10
    cfg = parse_params(params)
    history = train_method(cfg, "demo", "augmix_diffaug", show_progress=False)
    assert np.isfinite(history[0]["train_loss"]) and history[0]["lr"] == cfg.train.lr  # epoch 0 of the per-epoch cosine
    summary = evaluate_method(cfg, "demo", "augmix_diffaug")
    blocks = [summary["clean"], summary["corrupted"], *summary["corrupted"]["by_severity"].values(),
              *summary["corrupted"]["by_group"].values(), summary["diffaug_ensemble"]["ensemble"]["clean"]]
    assert all(0 <= block["ece_batch_mean"] <= 1 for block in blocks)


def test_deep_ensemble_of_one_model_is_the_model(prepared):
    """The ensemble of one model has the model's clean metrics; of a model and its copy, the same."""
    import shutil

    from mollify.evaluation.seeds import deep_ensemble

    train_method(prepared, "demo", "baseline", show_progress=False)
    clean = evaluate_method(prepared, "demo", "baseline")["clean"]
    copy = paths.model_file("demo", "baseline").with_name("copy.pt")
    shutil.copy(paths.model_file("demo", "baseline"), copy)
    curve = deep_ensemble(prepared, "demo", [paths.model_file("demo", "baseline"), copy])
    assert [row.pop("size") for row in curve] == [1, 2]
    assert curve[0] == clean and curve[1] == clean
