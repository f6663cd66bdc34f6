"""Our corruptions vs the reference generator (hendrycks/robustness), through committed statistics.

reference_stats.json holds, for every corruption x size x severity, the reference's mean absolute
change, per-image PSNR mean and spread and the sha256 of its uint8 output on the same clean images
(reference_images.npz; benchmarks/reference_fidelity.py made the file in a throwaway environment). No
reference code or output image is in this repository.
"""

import json
import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
import reference_fidelity as rf  # noqa: E402

REFERENCE = json.loads((Path(__file__).parent / "reference_stats.json").read_text())["stats"]

# Bit-identical to the reference's uint8 output: the same float64 / fixed-point arithmetic.
EXACT = {"pixelate", "jpeg_compression", "brightness", "saturate", "defocus_blur"}
# Deterministic, but a sum in another order (numpy's pairwise mean, scipy's zoom, ...) flips the
# truncation of a value within 1e-12 of an integer now and then (checked pixel by pixel: at most 1
# in 1000 values, by 1): mean absolute change within 0.005 of 255, PSNR within 0.05 dB.
NEAR_EXACT = {"contrast", "zoom_blur", "gaussian_blur"}


@pytest.fixture(scope="module")
def ours() -> dict:
    return {**rf.our_stats(32), **rf.our_stats(64)}


@pytest.mark.parametrize("name", rf.NAMES)
def test_statistics_match_the_reference(ours, name):
    for size, (count, _) in rf.IMAGES.items():
        for severity in range(1, 6):
            key = f"{name}/{size}/{severity}"
            mine, ref = ours[key], REFERENCE[key]
            if name in EXACT:
                assert mine["sha256"] == ref["sha256"], key
            elif name in NEAR_EXACT:
                assert mine["mean_abs"] == pytest.approx(ref["mean_abs"], abs=0.005), key
                assert mine["psnr_mean"] == pytest.approx(ref["psnr_mean"], abs=0.05), key
            else:
                # Random corruptions: two independent draws on the same `count` images. The mean
                # PSNRs differ by a standard error of at most sqrt(2) sd / sqrt(count) (pairing
                # by image only lowers it); 4 standard errors leave ~1 false alarm in 10^4 per
                # check, while a wrong parameter or formula moves the mean by far more (a
                # severity step is 1-6 dB). The spread of PSNR over images must agree to 25%.
                se = math.sqrt(2) * ref["psnr_std"] / math.sqrt(count)
                assert abs(mine["psnr_mean"] - ref["psnr_mean"]) <= 4 * se + 0.02, (key, mine, ref)
                assert 0.75 <= mine["psnr_std"] / ref["psnr_std"] <= 1.25, (key, mine, ref)
                assert mine["mean_abs"] == pytest.approx(ref["mean_abs"], rel=0.12), key


@pytest.mark.parametrize("name", rf.NAMES)
def test_damage_trend_is_the_reference_s(ours, name):
    """PSNR falls from severity 1 to 5 exactly where it does in the reference (everywhere but
    elastic_transform, whose severity 1 is its largest affine warp)."""
    for size in rf.IMAGES:
        first, last = (f"{name}/{size}/{s}" for s in (1, 5))
        falls = REFERENCE[first]["psnr_mean"] > REFERENCE[last]["psnr_mean"]
        assert (ours[first]["psnr_mean"] > ours[last]["psnr_mean"]) == falls, (name, size)
        assert falls == (name != "elastic_transform")
