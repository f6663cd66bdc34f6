"""Verdicts per pair: Welch's 95 % interval of the difference of means over seeds, on known values."""

import pytest

from mollify.evaluation.summary import mean_over_seeds
from mollify.report.verdicts import findings_table, verdict, welch_interval


def test_welch_interval_on_known_values():
    # means 2 and 5, variances 1 and 1 over 3 seeds: se = sqrt(2/3), df = 4, t(0.975, 4) = 2.7764
    diff, low, high = welch_interval([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    assert diff == -3.0
    assert low == pytest.approx(-3 - 2.776445 * (2 / 3) ** 0.5, abs=1e-5)
    assert high == pytest.approx(-3 + 2.776445 * (2 / 3) ** 0.5, abs=1e-5)
    # unequal variances and sizes: Welch-Satterthwaite df = (1/3 + 4/2)^2 / ((1/3)^2/2 + (4/2)^2/1) = 1.3535
    diff, low, high = welch_interval([1.0, 2.0, 3.0], [0.0, 2.0 * 2**0.5])
    from scipy import stats
    half = stats.t.ppf(0.975, (1 / 3 + 2) ** 2 / ((1 / 3) ** 2 / 2 + 4)) * (1 / 3 + 2) ** 0.5
    assert (diff, low, high) == pytest.approx((2 - 2**0.5, 2 - 2**0.5 - half, 2 - 2**0.5 + half))
    assert welch_interval([1.0], [1.0, 2.0]) is None
    assert welch_interval([1.0, 1.0], [2.0, 2.0]) == (-1.0, -1.0, -1.0)


def test_verdict_needs_the_whole_interval_on_one_side():
    assert verdict((-1.0, -2.0, -0.1)) == "lower (shows)"
    assert verdict((1.0, 0.1, 2.0)) == "higher (the opposite)"
    assert verdict((-1.0, -2.0, 0.5)) == "not distinguishable"
    assert verdict(None) == "one seed: no interval"


def test_findings_compare_each_method_with_its_control():
    def run(mce: float, nll: float) -> dict:
        return {"clean": {"err": 0.1, "nll": nll, "ece": 0.02}, "corrupted": {"mce": mce, "nll": 1.0, "ece": 0.1}}

    summaries = {
        ("demo", "baseline"): mean_over_seeds([run(0.50, 0.30), run(0.52, 0.32), run(0.54, 0.31)], [0, 1, 2]),
        ("demo", "diffaug"): mean_over_seeds([run(0.40, 0.30), run(0.42, 0.30), run(0.44, 0.30)], [0, 1, 2]),
        ("demo", "fcr"): mean_over_seeds([run(0.30, 0.30), run(0.32, 0.30), run(0.34, 0.30)], [0, 1, 2]),
        ("demo", "smooth"): mean_over_seeds([run(0.30, 0.31), run(0.32, 0.30), run(0.34, 0.33)], [0, 1, 2]),
    }
    table = findings_table(summaries, [("diffaug", "baseline"), ("smooth", "fcr")], {"diffaug": "diffaug", "smooth": "smoothing"})
    # mCE 42 vs 52 %, std 2 points each: se = 2 * sqrt(2/3) = 1.633, df 4: half-width 4.53 points
    assert "| demo | diffaug | baseline | lower mCE | 42.00 | 52.00 | -10.00 | [-14.53, -5.47] | 3 / 3 | lower (shows) |" in table
    # the smooth recipe is compared with its control fcr, not with the baseline
    assert "| demo | smooth | fcr | lower clean NLL | 0.313 | 0.300 | 0.013 |" in table
    assert "not distinguishable" in table and "| demo | fcr |" not in table

