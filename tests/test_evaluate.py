"""The flat headline metrics that DVC lists."""

import math

import pytest

from mollify.evaluate import headline, mean_over_seeds


def test_headline_picks_clean_and_standard_corrupted_numbers():
    summary = {
        "clean": {"acc": 0.9, "err": 0.1, "nll": 0.35, "ece": 0.02, "brier": 0.15},
        "corrupted": {"err": 0.3, "nll": 1.2, "ece": 0.08, "mce": 0.3, "by_severity": {"1": {"err": 0.2}}},
        "corrupted_extra": {"err": 0.5, "nll": 2.0, "ece": 0.1, "mce": 0.5},
        "diffaug_ensemble": {"ensemble": {"clean": {"err": 0.7}}},
    }
    assert headline(summary) == {"err": 0.1, "nll": 0.35, "ece": 0.02, "mce": 0.3, "c_nll": 1.2, "c_ece": 0.08, "seeds": 1}


def test_headline_without_standard_corruptions_has_nulls():
    summary = {"clean": {"err": 0.25, "nll": 0.7, "ece": 0.05}, "corrupted_extra": {"err": 0.5, "nll": 2.0, "ece": 0.1}}
    assert headline(summary, seeds=3) == {"err": 0.25, "nll": 0.7, "ece": 0.05, "mce": None, "c_nll": None,
                                          "c_ece": None, "seeds": 3}


def _run(err: float, nll: float, mce: float) -> dict:
    return {"clean": {"err": err, "nll": nll, "ece": 0.05},
            "corrupted": {"err": mce, "mce": mce, "nll": 2.0, "ece": 0.1, "n_corruptions": 15, "by_severity": {"1": {"err": mce - 0.1}}},
            "corrupted_source": {"source": "generated", "seed": 0}, "diffaug_ensemble": {"members": [0, 150]}}


def test_mean_over_seeds_averages_every_number_and_keeps_the_settings():
    summary = mean_over_seeds([_run(0.2, 1.0, 0.5), _run(0.4, 2.0, 0.7), _run(0.3, 0.0, 0.6)], [0, 1, 7])
    assert summary["clean"]["err"] == pytest.approx(0.3) and summary["clean"]["nll"] == pytest.approx(1.0)
    assert summary["corrupted"]["by_severity"]["1"]["err"] == pytest.approx(0.5)
    # sample std (ddof 1): sqrt(((-0.1)^2 + 0.1^2 + 0^2) / 2) = 0.1; nll: sqrt((0 + 1 + 1) / 2) = 1
    assert summary["std"]["clean"]["err"] == pytest.approx(0.1) and summary["std"]["clean"]["nll"] == pytest.approx(1.0)
    assert summary["std"]["clean"]["ece"] == 0.0 and summary["std"]["corrupted"]["mce"] == pytest.approx(0.1)
    # counts and settings equal in every run stay as they are (an int stays an int); text has no spread
    assert summary["corrupted"]["n_corruptions"] == 15 and isinstance(summary["corrupted"]["n_corruptions"], int)
    assert summary["corrupted_source"] == {"source": "generated", "seed": 0}
    assert summary["diffaug_ensemble"]["members"] == [0, 150]
    assert "source" not in summary["std"]["corrupted_source"] and "members" not in summary["std"]["diffaug_ensemble"]
    assert summary["seeds"] == [0, 1, 7]
    assert summary["runs"]["7"] == headline(_run(0.3, 0.0, 0.6))
    assert headline(summary, 3)["err"] == pytest.approx(0.3) and headline(summary, 3)["seeds"] == 3


def test_mean_over_one_seed_is_the_run_with_zero_spread():
    run = _run(0.2, 1.0, 0.5)
    summary = mean_over_seeds([run], [4])
    assert {k: summary[k] for k in run} == run
    assert summary["std"]["clean"] == {"err": 0.0, "nll": 0.0, "ece": 0.0}
    assert not math.isnan(summary["std"]["corrupted"]["mce"])


def _model_predict():
    """An untrained demo network and its softmax on uint8 images (with a per-batch transform)."""
    import torch

    from mollify.device import Normalize
    from mollify.evaluate import predict_probs
    from mollify.models import create_model

    torch.manual_seed(0)
    model = create_model("small_resnet", 10)
    normalize = Normalize((0.5, 0.5, 0.5), (0.25, 0.25, 0.25), torch.device("cpu"))
    return lambda images, transform=None: predict_probs(model, images, normalize, torch.device("cpu"), 16, "fp32", 1, transform)


def test_sweeps_at_level_zero_are_the_clean_evaluation():
    """The occlusion sweep at full visibility and the noise sweeps at strength 0 give the clean
    evaluation's metrics exactly; a positive level changes the predictions."""
    import torch

    from mollify.evaluate import perturbation_sweep
    from mollify.metrics import classification_metrics
    from mollify.robustness import cutout, salt_and_pepper, white_noise

    predict = _model_predict()
    images, labels = synthetic_images()
    clean = classification_metrics(predict(images), torch.from_numpy(labels))
    cases = [(lambda z, level, g: cutout(z, int(level), g), 16, True),
             (lambda z, level, g: white_noise(z, level, (0.25,) * 3, g), 0.3, False), (salt_and_pepper, 0.3, False)]
    for perturb, level, visible in cases:
        rows = perturbation_sweep(lambda transform: predict(images, transform), labels, [0, level], perturb,
                                  classification_metrics, 0, torch.device("cpu"), visible)
        assert {k: v for k, v in rows[0].items() if k not in ("level", "visible")} == clean
        assert rows[1]["nll"] != clean["nll"]
        if visible:  # a 16-px hole covers at most a quarter of 32 x 32 (less where it is clipped)
            assert rows[0]["visible"] == 1.0 and 0.75 <= rows[1]["visible"] < 0.85


def synthetic_images():
    from mollify.data.synthetic import generate

    return generate(40, seed=0)


def test_evals_headline_flattens_the_other_evaluations():
    from mollify.experiment import evals_headline

    row = {"acc": 0.5, "nll": 1.0, "ece": 0.1, "brier": 0.6}
    summary = {
        "clean": row, "occlusion": {"0": {**row, "visible": 1.0}, "16": {**row, "acc": 0.3, "visible": 0.8}},
        "ood": {"svhn": {"kind": "far", "images": 100, "default": {"msp": {"auroc": 0.9, "fpr95": 0.4}}}},
        "certified": {"images": 10, "accuracy": {"sigma_0.25": {"0": 0.4}, "best": {"0": 0.4}}},
        "deep_ensemble": {"1": row, "2": {**row, "nll": 0.8}},
    }
    assert evals_headline(summary) == {
        "occlusion": {"acc_0": 0.5, "acc_16": 0.3},
        "ood": {"svhn": {"default": {"msp": {"auroc": 0.9, "fpr95": 0.4}}}},
        "certified": {"sigma_0.25": {"0": 0.4}, "best": {"0": 0.4}},
        "deep_ensemble": {"1": {"acc": 0.5, "nll": 1.0, "ece": 0.1}, "2": {"acc": 0.5, "nll": 0.8, "ece": 0.1}},
    }
