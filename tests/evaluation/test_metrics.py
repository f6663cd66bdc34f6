"""Metric functions against independent computations (numpy by hand, torchmetrics)."""

import numpy as np
import pytest
import torch
from torchmetrics.functional.classification import multiclass_calibration_error

from mollify.evaluation.summary import summarize
from mollify.evaluation.metrics import (batch_mean_ece, classification_metrics, expected_calibration_error,
                                        reference_ece, reliability_bins, right_closed_ece)


def _random_probs(n: int, k: int, seed: int, with_certain: bool) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, k, generator=g) * 3
    probs = torch.softmax(logits.double(), dim=1)
    if with_certain:  # rows whose confidence is exactly 1.0, right or wrong
        probs[:10] = torch.nn.functional.one_hot(torch.randint(0, k, (10,), generator=g), k).double()
    labels = torch.where(torch.rand(n, generator=g) < 0.7, probs.argmax(1), torch.randint(0, k, (n,), generator=g))
    return probs, labels


def _numpy_reference(probs: np.ndarray, labels: np.ndarray, n_bins: int) -> dict[str, float]:
    conf, pred = probs.max(1), probs.argmax(1)
    correct = pred == labels
    edges = np.linspace(0, 1, n_bins + 1)
    ece = 0.0
    for b in range(n_bins):
        lo, hi = edges[b], edges[b + 1]
        in_bin = (conf >= lo) & ((conf < hi) if b < n_bins - 1 else (conf <= hi))
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - conf[in_bin].mean())
    onehot = np.eye(probs.shape[1])[labels]
    with np.errstate(divide="ignore"):
        nll = -np.log(probs[np.arange(len(labels)), labels])
    confident = conf > 0.9
    return {
        "acc": correct.mean(), "err": 1 - correct.mean(), "nll": nll.mean(), "ece": ece,
        "brier": ((probs - onehot) ** 2).sum(1).mean(),
        "acc90": correct[confident].mean(), "freq90": confident.mean(), "unc90": (conf[~correct] <= 0.9).mean(),
    }


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n_bins", [10, 15])
def test_metrics_match_numpy_with_certain_predictions(seed, n_bins):
    probs, labels = _random_probs(2000, 10, seed, with_certain=True)
    probs[10:] = probs[10:].clamp_min(1e-9)  # finite NLL; exact 1.0 rows kept only where labelled right
    labels[:10] = probs[:10].argmax(1)
    ours = classification_metrics(probs, labels, n_bins)
    ref = _numpy_reference(probs.numpy(), labels.numpy(), n_bins)
    for key in ref:
        assert ours[key] == pytest.approx(ref[key], abs=1e-12), key


def test_confidence_one_is_in_the_last_bin():
    probs = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.5, 0.5]], dtype=torch.float64)
    labels = torch.tensor([0, 1, 0])
    bins = reliability_bins(probs, labels, 15)
    assert bins["count"][14] == 2 and bins["count"].sum() == 3
    assert bins["confidence"][14] == 1.0 and bins["accuracy"][14] == 0.5
    # |0.5 - 1.0| * 2/3 from the last bin + |1 - 0.5| * 1/3 from the bin of 0.5
    assert expected_calibration_error(probs, labels, 15) == pytest.approx(0.5)


@pytest.mark.parametrize("seed", range(3))
def test_ece_matches_torchmetrics(seed):
    probs, labels = _random_probs(3000, 7, seed, with_certain=False)
    ref = multiclass_calibration_error(probs.float(), labels, num_classes=7, n_bins=15, norm="l1")
    assert expected_calibration_error(probs, labels, 15) == pytest.approx(float(ref), abs=1e-5)


def test_perfect_and_uniform_predictions():
    labels = torch.arange(10)
    perfect = classification_metrics(torch.eye(10, dtype=torch.float64), labels)
    # no wrong prediction: unc90 is 0, as the smoothing reference's unconfidence()
    assert perfect == {"acc": 1.0, "err": 0.0, "nll": 0.0, "ece": 0.0, "brier": 0.0, "acc90": 1.0, "freq90": 1.0, "unc90": 0.0}
    uniform = classification_metrics(torch.full((10, 10), 0.1, dtype=torch.float64), labels)
    assert uniform["nll"] == pytest.approx(np.log(10))
    assert uniform["brier"] == pytest.approx(0.9)
    # no confident prediction: acc90 is 0 (not null), as the reference's gacc()
    assert uniform["acc90"] == 0.0 and uniform["freq90"] == 0.0 and uniform["unc90"] == 1.0


def test_nll_of_a_zero_probability_is_large_but_finite():
    m = classification_metrics(torch.tensor([[1.0, 0.0]], dtype=torch.float64), torch.tensor([1]))
    assert np.isfinite(m["nll"]) and m["nll"] > 700


def test_batch_mean_ece_is_torchmetrics_ece_per_batch_of_100_averaged():
    probs, labels = _random_probs(1000, 10, 7, with_certain=False)
    per_batch = [float(multiclass_calibration_error(p.float(), y, num_classes=10, n_bins=15, norm="l1"))
                 for p, y in zip(probs.split(100), labels.split(100))]
    assert batch_mean_ece(probs, labels, 15, 100) == pytest.approx(np.mean(per_batch), abs=1e-5)
    metrics = classification_metrics(probs, labels, 15, ece_batch_size=100)
    assert metrics["ece_batch_mean"] == pytest.approx(np.mean(per_batch), abs=1e-5)
    assert metrics["ece_batch_mean"] > metrics["ece"]  # the small batches bias it upwards
    assert "ece_batch_mean" not in classification_metrics(probs, labels, 15)


def test_batch_mean_ece_weights_a_last_partial_batch_by_its_size():
    probs, labels = _random_probs(250, 10, 8, with_certain=False)
    parts = [expected_calibration_error(probs[a:b], labels[a:b], 15) for a, b in ((0, 100), (100, 200), (200, 250))]
    assert batch_mean_ece(probs, labels, 15, 100) == pytest.approx((100 * parts[0] + 100 * parts[1] + 50 * parts[2]) / 250)


def test_a_calibrated_predictor_has_a_small_ece_and_a_large_batch_mean_ece():
    """The issue's example: 10,000 samples whose confidence is right on average."""
    g = torch.Generator().manual_seed(0)
    conf = 0.5 + 0.5 * torch.rand(10_000, generator=g, dtype=torch.float64)
    probs = torch.stack([conf, 1 - conf], 1)
    labels = (torch.rand(10_000, generator=g, dtype=torch.float64) > conf).long()  # class 0 with probability conf
    m = classification_metrics(probs, labels, 15, ece_batch_size=100)
    assert m["ece"] < 0.02 and 0.05 < m["ece_batch_mean"] < 0.15


def test_corrupted_acc90_and_unc90_are_pooled_counts_over_the_sets():
    g = torch.Generator().manual_seed(1)
    sets = [_random_probs(300, 10, seed, with_certain=False) for seed in (11, 12, 13)]
    # a set without confident predictions: acc90 = 0 there, and it adds nothing to the pooled count
    sets.append((torch.full((300, 10), 0.1, dtype=torch.float64), torch.randint(0, 10, (300,), generator=g)))
    table = [{"corruption": name, "severity": 1, **classification_metrics(p, y)}
             for name, (p, y) in zip(["gaussian_noise", "fog", "contrast", "pixelate"], sets)]
    assert table[-1]["acc90"] == 0.0
    summary = summarize(classification_metrics(*sets[0]), table)["corrupted"]
    probs, labels = torch.cat([p for p, _ in sets]), torch.cat([y for _, y in sets])
    conf, correct = probs.max(1).values, probs.argmax(1) == labels
    confident = conf > 0.9
    assert summary["acc90"] == pytest.approx(int((correct & confident).sum()) / int(confident.sum()), abs=1e-12)
    assert summary["unc90"] == pytest.approx(int((~correct & ~confident).sum()) / int((~correct).sum()), abs=1e-12)
    assert summary["freq90"] == pytest.approx(float(confident.double().mean()), abs=1e-12)
    assert summary["acc90"] < np.mean([r["acc90"] for r in table[:3]])  # the plain mean of the 3 non-empty sets
    assert summary["by_corruption"] == {r["corruption"]: {"err": r["err"]} for r in table}


def test_batch_mean_ece_is_in_every_block_that_has_ece():
    sets = [_random_probs(200, 10, seed, with_certain=False) for seed in (21, 22)]
    table = [{"corruption": name, "severity": s, **classification_metrics(p, y, 15, 100)}
             for name, s, (p, y) in zip(["fog", "saturate"], [1, 2], sets)]
    summary = summarize(classification_metrics(*sets[0], 15, 100), table)
    for part in ("corrupted", "corrupted_extra"):
        block = summary[part]
        assert "ece_batch_mean" in block
        for sub in (*block["by_severity"].values(), *block["by_group"].values()):
            assert "ece" in sub and "ece_batch_mean" in sub
    assert summary["corrupted"]["ece_batch_mean"] == table[0]["ece_batch_mean"]


def _rows_of_known_confidence() -> tuple[torch.Tensor, torch.Tensor]:
    """20 classes; (confidence, predicted class, label) chosen for the edges: 0.05 < 1/15 (bin 0),
    exactly 0.9 (not > 0.9), one confident row (correct), one wrong row (not confident), and 0.6 /
    0.65 sharing bin 9 of 15 but not of 16 bins. The labels never reach the last class."""
    rows = [(0.05, 0, 0), (0.9, 1, 1), (0.95, 2, 2), (0.5, 4, 4), (0.6, 5, 6), (0.65, 7, 7)]
    probs = torch.zeros(len(rows), 20, dtype=torch.float64)
    for i, (conf, pred, _) in enumerate(rows):
        probs[i] = (1 - conf) / 19
        probs[i, pred] = conf
    probs[0] = 1 / 20  # uniform: argmax is class 0
    return probs, torch.tensor([label for *_, label in rows])


def _ece_by_hand(conf: list[float], correct: list[bool], n_bins: int) -> float:
    bins: dict[int, list[int]] = {}
    for i, c in enumerate(conf):
        bins.setdefault(min(int(c * n_bins), n_bins - 1), []).append(i)
    return sum(abs(sum(correct[i] for i in b) / len(b) - sum(conf[i] for i in b) / len(b)) * len(b)
               for b in bins.values()) / len(conf)


def test_metrics_at_the_edges_of_their_definitions_with_the_default_15_bins():
    probs, labels = _rows_of_known_confidence()
    conf, correct = [0.05, 0.9, 0.95, 0.5, 0.6, 0.65], [True, True, True, True, False, True]
    m = classification_metrics(probs, labels)
    assert m["acc"] == pytest.approx(5 / 6)
    assert m["freq90"] == pytest.approx(1 / 6)  # 0.9 itself is not > 0.9
    assert m["acc90"] == 1.0  # the one confident row is right
    assert m["unc90"] == 1.0  # the one wrong row is not confident
    assert m["ece"] == pytest.approx(_ece_by_hand(conf, correct, 15), abs=1e-12)
    assert _ece_by_hand(conf, correct, 15) != pytest.approx(_ece_by_hand(conf, correct, 16))
    assert expected_calibration_error(probs, labels) == pytest.approx(_ece_by_hand(conf, correct, 15), abs=1e-12)
    bins = reliability_bins(probs, labels)
    assert bins["count"].tolist() == [1, 0, 0, 0, 0, 0, 0, 1, 0, 2, 0, 0, 0, 1, 1]  # 15 bins; 0.05 in bin 0


def test_batch_mean_ece_defaults_and_batch_size_passed_through():
    g = torch.Generator().manual_seed(0)
    sharpness = torch.where(torch.arange(150) % 3 == 0, 5.0, 0.5).double()[:, None]
    probs = torch.randn(150, 10, generator=g, dtype=torch.float64).mul(sharpness).softmax(1)
    # right 70% of the time: flat rows underconfident, sharp rows overconfident (were every bin
    # on one side, the ECE would be mean conf - mean acc, the same however the rows are batched)
    labels = torch.where(torch.rand(150, generator=g) < 0.7, probs.argmax(1), torch.randint(0, 10, (150,), generator=g))

    def by_batches(size: int, n_bins: int) -> float:
        return sum(expected_calibration_error(probs[i:i + size], labels[i:i + size], n_bins) * len(labels[i:i + size])
                   for i in range(0, 150, size)) / 150

    assert batch_mean_ece(probs, labels) == pytest.approx(by_batches(100, 15), abs=1e-12)  # batches of 100, 15 bins
    assert batch_mean_ece(probs, labels, 10) == pytest.approx(by_batches(100, 10), abs=1e-12)
    assert by_batches(100, 15) != pytest.approx(by_batches(100, 16))
    # batches of exactly 100: 100 right rows at confidence 0.5 and a wrong one at 0.5 give
    # (100 x 0.5 + 1 x 0.5) / 101 in batches of 100, |100/101 - 0.5| in one batch of 101
    flat = torch.full((101, 2), 0.5, dtype=torch.float64)
    assert batch_mean_ece(flat, torch.tensor([0] * 100 + [1])) == pytest.approx(50.5 / 101)
    m = classification_metrics(probs, labels, 10, ece_batch_size=50)
    assert m["ece_batch_mean"] == pytest.approx(by_batches(50, 10), abs=1e-12)


def _two_class(conf: list[float], correct: list[bool]) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of a 2-class prediction with these confidences of class 0, labelled right or wrong."""
    c = torch.tensor(conf, dtype=torch.float64)
    probs = torch.stack([c, 1 - c], dim=1)
    labels = torch.tensor([0 if ok else 1 for ok in correct])
    return probs, labels


def test_right_closed_bins_put_an_edge_confidence_in_the_bin_below():
    # Soft Augmentation's ECE: 0.5 in (0.4, 0.5] alone, 0.55 in (0.5, 0.6]: (|1 - .5| + |0 - .55|) / 2
    probs, labels = _two_class([0.5, 0.55], [True, False])
    assert right_closed_ece(probs, labels) == pytest.approx(0.525, abs=1e-12)
    # ours, 10 bins [a, b): both in [0.5, 0.6): |0.5 - 0.525|
    assert expected_calibration_error(probs, labels, 10) == pytest.approx(0.025, abs=1e-12)


def _digitize_ece(conf: np.ndarray, correct: np.ndarray) -> float:
    """The release's binning restated: np.digitize(conf, np.linspace(0, 1, 11), right=True)."""
    idx = np.digitize(conf, np.linspace(0, 1, 11), right=True)
    return sum(abs(correct[idx == b].sum() - conf[idx == b].sum()) for b in range(11)) / len(conf)


@pytest.mark.parametrize("seed", [0, 1])
def test_right_closed_bins_equal_the_releases_digitize_on_edge_and_random_confidences(seed):
    g = torch.Generator().manual_seed(seed)
    # the edges of np.linspace(0, 1, 11) (0.7000000000000001 ...), the floats either side, and random ones
    edges = np.linspace(0, 1, 11)[6:]  # above 0.5: the confidence of a 2-class row
    conf = np.concatenate([edges, np.nextafter(edges, 1.0)[:-1], np.nextafter(edges, 0.0),
                           0.5 + 0.5 * torch.rand(200, generator=g, dtype=torch.float64).numpy()])
    correct = torch.rand(len(conf), generator=g).numpy() < 0.7
    probs, labels = _two_class(conf.tolist(), correct.tolist())
    assert right_closed_ece(probs, labels) == pytest.approx(_digitize_ece(conf, correct), abs=1e-12)


def test_reference_ece_counts_a_confidence_of_one_but_never_sums_it():
    # spatial smoothing's ECE: both rows counted in (0.9, 1], only 0.9375 summed in [0.9, 1):
    # conf_b = 0.9375 / (2 + 1e-7), acc_b = 0.5; ECE = |0.5 - conf_b| x 2 / (2 + 1e-7)
    probs, labels = _two_class([1.0, 0.9375], [True, False])
    conf_b = 0.9375 / (2 + 1e-7)
    assert reference_ece(probs, labels) == pytest.approx(abs(0.5 - conf_b) * 2 / (2 + 1e-7), abs=1e-12)
    assert expected_calibration_error(probs, labels, 10) == pytest.approx(0.46875, abs=1e-12)  # ours: |0.5 - 0.96875|
    # all-correct rows at 1.0: the bin's mean confidence is 0, so that ECE is 1 (ours 0)
    probs, labels = _two_class([1.0, 1.0, 1.0], [True, True, True])
    assert reference_ece(probs, labels) == pytest.approx(3 / (3 + 1e-7), abs=1e-12)
    assert expected_calibration_error(probs, labels, 10) == 0.0


def test_reference_ece_reads_the_fp32_softmax():
    # 1 - 1e-9 is 1.0 in fp32: counted, not summed, as a confidence of exactly 1.0
    near, exact = _two_class([1 - 1e-9, 0.9375], [True, False]), _two_class([1.0, 0.9375], [True, False])
    assert reference_ece(*near) == reference_ece(*exact)
    # an edge confidence: counted in (0.4, 0.5], summed in [0.5, 0.6) where nothing is counted
    probs, labels = _two_class([0.5], [True])
    assert reference_ece(probs, labels) == pytest.approx(1 / (1 + 1e-7), abs=1e-12)  # |1 - 0| x 1


@pytest.mark.parametrize("variant", ["ece_right_closed", "ece_reference"])
def test_the_papers_variant_is_computed_beside_ours_only_when_asked(variant):
    probs, labels = _random_probs(300, 10, 0, with_certain=True)
    assert variant not in classification_metrics(probs, labels)
    metrics = classification_metrics(probs, labels, 15, paper_ece=variant)
    fn = {"ece_right_closed": right_closed_ece, "ece_reference": reference_ece}[variant]
    assert metrics[variant] == fn(probs, labels) and metrics["ece"] == expected_calibration_error(probs, labels, 15)
