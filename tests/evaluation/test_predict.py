"""The flat headline metrics that DVC lists; the summaries on a hand-made table (every mean written out
from the table's construction); MC-dropout and DiffAug-Ensemble averaging."""

import itertools
import math

import numpy as np
import pytest
import torch

from mollify.corruptions import EXTRA, STANDARD
from mollify.device import Normalize
from mollify.evaluation.predict import member_streams, predict_probs, predict_probs_ensemble, predictive_entropy
from mollify.evaluation.summary import headline, mean_over_seeds, summarize


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
    from mollify.evaluation.predict import predict_probs
    from mollify.models import create_model

    torch.manual_seed(0)
    model = create_model("small_resnet", 10)
    normalize = Normalize((0.5, 0.5, 0.5), (0.25, 0.25, 0.25), torch.device("cpu"))
    return lambda images, transform=None: predict_probs(model, images, normalize, torch.device("cpu"), 16, "fp32", 1, transform)


def test_sweeps_at_level_zero_are_the_clean_evaluation():
    """The occlusion sweep at full visibility and the noise sweeps at strength 0 give the clean
    evaluation's metrics exactly; a positive level changes the predictions."""
    import torch

    from mollify.evaluation.predict import perturbation_sweep
    from mollify.evaluation.metrics import classification_metrics
    from mollify.evaluation.perturbations import cutout, salt_and_pepper, white_noise

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


def test_sweep_draws_each_level_from_its_own_stream_continued_over_batches():
    """Level l's perturbation draws from seeded_generator(seed, round(1000 l)), one stream for all
    batches; level 0 evaluates without a transform; without `visible` the perturbation returns images only."""
    import torch

    from mollify.device import seeded_generator
    from mollify.evaluation.predict import perturbation_sweep

    draws: dict[float, list[float]] = {}

    def perturb(x, level, g):  # records the draws, returns the images (not a pair)
        draws.setdefault(level, []).append(float(torch.rand((), generator=g)))
        return x + level

    transforms = []

    def probs_of(transform):
        transforms.append(transform)
        batches = [torch.zeros(2, 3, 4, 4), torch.zeros(3, 3, 4, 4)]
        if transform is not None:
            batches = [transform(x) for x in batches]
        return torch.cat([b.mean(dim=(2, 3))[:, :2].softmax(1) for b in batches])

    metrics = lambda probs, target: {"n": len(target), "p": float(probs[0, 0])}  # noqa: E731
    rows = perturbation_sweep(probs_of, [0, 1, 0, 1, 0], [0, 0.25, 0.5, 16], perturb, metrics, 7, torch.device("cpu"))
    assert transforms[0] is None and all(t is not None for t in transforms[1:])
    assert [row["level"] for row in rows] == [0, 0.25, 0.5, 16] and all(row["n"] == 5 for row in rows)
    for level in (0.25, 0.5, 16):
        g = seeded_generator(7, round(level * 1000))
        assert draws[level] == [float(torch.rand((), generator=g)) for _ in range(2)]  # continued over 2 batches
    assert 0 not in draws
    draws.clear()
    visible = lambda x, level, g: (perturb(x, level, g), torch.full((len(x),), 0.5))  # noqa: E731
    rows = perturbation_sweep(probs_of, [0, 1, 0, 1, 0], [16], visible, metrics, 7, torch.device("cpu"), visible=True)
    assert rows[0]["visible"] == 0.5
    assert draws[16] == [float(torch.rand((), generator=g)) for g in [seeded_generator(7, 16000)] for _ in range(2)]


def synthetic_images():
    from mollify.data.synthetic import generate

    return generate(40, seed=0)


def test_evals_headline_flattens_the_other_evaluations():
    from mollify.evaluation.seeds import evals_headline

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


# err of corruption number c (its place in STANDARD or EXTRA) at severity s: c / 100 + s / 10;
# nll = 2 err, ece = err / 4, so every mean below follows from sums of integers
_GROUP_OF = {"gaussian_noise": "noise", "shot_noise": "noise", "impulse_noise": "noise", "speckle_noise": "noise",
             "defocus_blur": "blur", "glass_blur": "blur", "motion_blur": "blur", "zoom_blur": "blur",
             "gaussian_blur": "blur", "snow": "weather", "frost": "weather", "fog": "weather", "spatter": "weather"}


def _row(names: tuple[str, ...], c: int, s: int) -> dict:
    err = c / 100 + s / 10
    return {"corruption": names[c], "severity": s, "err": err, "nll": 2 * err, "ece": err / 4}


def _table(severities=(1, 2, 3, 4, 5)) -> list[dict]:
    return [_row(names, c, s) for names in (STANDARD, EXTRA) for c, s in itertools.product(range(len(names)), severities)]


def test_mce_per_severity_per_group_and_extra_means_of_a_hand_made_table():
    summary = summarize({"err": 0.05, "nll": 0.2, "ece": 0.01}, _table())
    std, extra = summary["corrupted"], summary["corrupted_extra"]
    # mean over c = 0..14 of c / 100 is 0.07; mean over s = 1..5 of s / 10 is 0.3
    assert std["mce"] == pytest.approx(0.37) and std["err"] == pytest.approx(0.37)
    assert std["nll"] == pytest.approx(0.74) and std["ece"] == pytest.approx(0.0925)
    assert std["n_corruptions"] == 15 and extra["n_corruptions"] == 4
    assert extra["mce"] == pytest.approx(0.015 + 0.3)  # c = 0..3: mean 0.015
    assert {s: v["err"] for s, v in std["by_severity"].items()} == pytest.approx({str(s): 0.07 + s / 10 for s in range(1, 6)})
    assert std["by_severity"]["2"]["nll"] == pytest.approx(2 * 0.27)
    assert std["by_corruption"]["fog"]["err"] == pytest.approx(STANDARD.index("fog") / 100 + 0.3)
    assert list(std["by_corruption"]) == list(STANDARD)
    groups = {g: [c for c, name in enumerate(STANDARD) if _GROUP_OF.get(name, "digital") == g]
              for g in ("noise", "blur", "weather", "digital")}
    assert {g: v["err"] for g, v in std["by_group"].items()} == pytest.approx(
        {g: np.mean(cs) / 100 + 0.3 for g, cs in groups.items()})
    assert {g: v["ece"] for g, v in extra["by_group"].items()} == pytest.approx(
        {g: (EXTRA.index(name) / 100 + 0.3) / 4 for name, g in zip(EXTRA, ("noise", "blur", "weather", "digital"))})
    assert set(std["by_severity"]["1"]) == {"err", "nll", "ece"}


def test_summaries_of_a_table_with_some_severities_and_no_extra_corruptions():
    table = [r for r in _table((1, 3)) if r["corruption"] in STANDARD[:2]]
    summary = summarize({"err": 0.1, "nll": 0.3, "ece": 0.02}, table)
    assert "corrupted_extra" not in summary and summary["clean"] == {"err": 0.1, "nll": 0.3, "ece": 0.02}
    assert summary["corrupted"]["mce"] == pytest.approx(0.005 + 0.2)
    assert list(summary["corrupted"]["by_severity"]) == ["1", "3"]
    assert summary["corrupted"]["by_group"] == {"noise": pytest.approx({"err": 0.205, "nll": 0.41, "ece": 0.05125})}


class _Sequence(torch.nn.Module):
    """Returns log p_i for the i-th call: softmax gives p_i back, so the MC mean is known."""

    def __init__(self, probs: list[list[float]]):
        super().__init__()
        self.probs, self.calls = torch.tensor(probs), 0

    def forward(self, x):
        p = self.probs[self.calls % len(self.probs)]
        self.calls += 1
        return p.log().expand(len(x), -1)


def test_mc_dropout_averages_the_softmax_of_n_passes_per_batch():
    model = _Sequence([[0.5, 0.5, 0.0], [0.2, 0.2, 0.6], [0.8, 0.1, 0.1], [0.3, 0.3, 0.4]])
    images = torch.zeros(6, 3, 2, 2, dtype=torch.uint8)
    norm = Normalize((0.5,) * 3, (0.25,) * 3, torch.device("cpu"))
    probs = predict_probs(model, images, norm, torch.device("cpu"), batch_size=4, samples=3)
    assert probs.dtype == torch.float64 and model.calls == 6  # 2 batches x 3 passes
    torch.testing.assert_close(probs[:4], torch.tensor([[0.5, 0.8 / 3, 0.7 / 3]] * 4, dtype=torch.float64))
    torch.testing.assert_close(probs[4:], torch.full((2, 3), 1 / 3, dtype=torch.float64))  # passes 4, 1, 2


def test_ensemble_members_see_their_fixed_t_and_average_the_softmax():
    seen = []

    def diffaug(x, g, t):
        seen.append(t)
        return torch.full_like(x, t / 1000)  # an image whose value encodes the member's t

    class Brightness(torch.nn.Module):
        def forward(self, x):  # class 0 for dark images, class 1 for bright ones
            return torch.stack([-x.mean((1, 2, 3)), x.mean((1, 2, 3))], 1) * 10

    images = torch.zeros(2, 3, 2, 2, dtype=torch.uint8)
    norm = Normalize((0.0,) * 3, (1.0,) * 3, torch.device("cpu"))
    streams = member_streams(0, [0, 100, 400], torch.device("cpu"))
    probs = predict_probs_ensemble(Brightness(), images, norm, torch.device("cpu"), diffaug, streams)
    assert seen == [100, 400]  # t = 0 is the raw image
    # member t: every pixel t / 1000 x 255, normalised to t / 1000 -> logits -+t / 100; p_1 = sigmoid(t / 50)
    expected = np.mean([1 / (1 + np.exp(-t / 50)) for t in (0, 100, 400)])
    torch.testing.assert_close(probs[:, 1], torch.full((2,), expected, dtype=torch.float64))


def test_predictive_entropy_known_values():
    probs = torch.tensor([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]], dtype=torch.float64)
    torch.testing.assert_close(predictive_entropy(probs), torch.tensor([np.log(2), 0.0, np.log(3)], dtype=torch.float64))


def test_pooled_acc90_and_unc90_are_0_where_no_set_has_a_qualifying_sample():
    zero = {"err": 0.0, "nll": 0.0, "ece": 0.0, "acc90": 0.0, "freq90": 0.0, "unc90": 0.0}
    summary = summarize(zero, [{"corruption": c, "severity": 1, **zero} for c in STANDARD[:3]])["corrupted"]
    assert (summary["acc90"], summary["unc90"], summary["freq90"], summary["mce"]) == (0.0, 0.0, 0.0, 0.0)


def test_a_table_of_extra_corruptions_only_has_no_standard_block():
    rows = [r for r in _table((2,)) if r["corruption"] in EXTRA]
    summary = summarize({"err": 0.1, "nll": 0.3, "ece": 0.02}, rows)
    assert "corrupted" not in summary and summary["corrupted_extra"]["mce"] == pytest.approx(0.015 + 0.2)


class _FixedLogits(torch.nn.Module):
    """Logits (gap, 0) whatever the image: the softmax's confidence is 1 / (1 + exp(-gap))."""

    def __init__(self, gap: float):
        super().__init__()
        self.gap = gap

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tensor([[self.gap, 0.0]]).expand(x.shape[0], 2)


@pytest.mark.parametrize(("gap", "fp32_is_one"), [(20.0, True), (15.0, False)])
def test_an_fp32_softmax_rounds_a_confidence_to_one_as_the_releases(gap, fp32_is_one):
    # exp(-20) = 2.1e-9 < 2^-24: 1.0 in fp32 (the releases' F.softmax), 1 - 2.1e-9 in fp64 (ours)
    images = np.zeros((3, 3, 4, 4), dtype=np.uint8)
    norm = Normalize((0.5,) * 3, (0.25,) * 3, torch.device("cpu"))
    probs = {s: predict_probs(_FixedLogits(gap), images, norm, torch.device("cpu"), softmax=s)[:, 0] for s in ("fp32", "fp64")}
    assert bool((probs["fp32"] == 1.0).all()) is fp32_is_one
    assert float(probs["fp64"][0]) == pytest.approx(1 / (1 + math.exp(-gap)), rel=1e-15) and bool((probs["fp64"] < 1).all())
