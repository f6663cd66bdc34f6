"""The data criterion: the demo baseline's per-corruption errors against the published profile."""

import pytest

from mollify.corruptions.names import STANDARD
from mollify.errors import MollifyError
from mollify.report.profile import Profile, compare_profile, load_reference_profile


def test_reference_profile_is_robustbench_standard():
    ref = load_reference_profile()
    # RobustBench "Standard" WRN-28-10: clean 94.78 % accuracy, CIFAR-10-C accuracy 73.46 %
    assert ref.clean == pytest.approx(0.0522)
    assert ref.mce == pytest.approx(1 - 0.7346, abs=5e-4)
    assert max(ref.errors, key=ref.errors.get) == "gaussian_noise" and min(ref.errors, key=ref.errors.get) == "brightness"


def test_criterion_on_known_values():
    ref = Profile(0.05, {c: 0.05 + 0.01 * k for k, c in enumerate(STANDARD)})  # mCE 0.12, ratio 2.4
    same_order = {c: 0.1 + 0.02 * k for k, c in enumerate(STANDARD)}  # mCE 0.24
    result = compare_profile(same_order, 0.1, ref)
    assert result.spearman == pytest.approx(1.0) and result.ratio_factor == pytest.approx(1.0) and result.holds
    reversed_order = {c: 0.1 + 0.02 * (14 - k) for k, c in enumerate(STANDARD)}
    assert compare_profile(reversed_order, 0.1, ref).spearman == pytest.approx(-1.0)
    assert not compare_profile(reversed_order, 0.1, ref).holds
    # ratio 0.24 / 0.05 = 4.8 against 2.4: a factor 2 apart, beyond 1.5
    far = compare_profile(same_order, 0.05, ref)
    assert far.ratio_factor == pytest.approx(2.0) and not far.holds
    assert "| gaussian_noise | 10.00 | 15 | 5.00 | 15 |" in result.table()
    assert "Spearman rank correlation 1.000" in result.summary() and "criterion holds" in result.summary()


def test_missing_corruption_or_file_is_one_clear_error(tmp_path):
    with pytest.raises(MollifyError, match="missing gaussian_noise"):
        compare_profile({c: 0.1 for c in STANDARD[1:]}, 0.1, load_reference_profile())
    with pytest.raises(MollifyError, match="is missing: restore it"):
        load_reference_profile(tmp_path / "none.csv")
    (tmp_path / "bad.csv").write_text("corruption,err\nclean,0.05\n")
    with pytest.raises(MollifyError, match="lacks the rows gaussian_noise"):
        load_reference_profile(tmp_path / "bad.csv")


def test_profile_section_reads_the_baselines_summary():
    from mollify.report.profile import profile_section

    ref = load_reference_profile()
    summary = {"clean": {"err": 2 * ref.clean}, "corrupted": {"by_corruption": {c: {"err": 2 * e} for c, e in ref.errors.items()}}}
    text = profile_section(summary, "baseline")
    assert "Spearman rank correlation 1.000" in text and "a factor 1.00 apart" in text and "criterion holds" in text
    assert profile_section(None, "baseline") == "" and profile_section({"clean": {"err": 0.1}}, "baseline") == ""
