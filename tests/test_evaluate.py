"""The flat headline metrics that DVC lists."""

from mollify.evaluate import headline


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
