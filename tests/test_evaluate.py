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
