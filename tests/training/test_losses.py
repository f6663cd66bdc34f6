"""Losses on soft targets against values computed by hand (plain Python floats, no torch)."""

import math

import pytest
import torch
import torch.nn.functional as F

from mollify.training.losses import (LOSSES, augmix_jsd, binary_cross_entropy, normalized_cross_entropy,
                                     soft_cross_entropy)


def _softmax(z: list[float]) -> list[float]:
    e = [math.exp(v) for v in z]
    return [v / sum(e) for v in e]


def _nce(z: list[float], y: list[float]) -> float:
    """CE(y, f) + log Z, Z = sum_k (g - f_k) / (log g - log f_k), g the geometric mean of f (the reference's nce)."""
    f = _softmax(z)
    g = math.exp(sum(math.log(v) for v in f) / len(f))
    terms = [(g - fk) / (math.log(g) - math.log(fk)) if abs(math.log(g) - math.log(fk)) > 1e-12 else g for fk in f]
    return -sum(yk * math.log(fk) for yk, fk in zip(y, f)) + math.log(sum(terms))


def test_nce_at_non_uniform_logits():
    rows = [([2.0, 0.0, -1.0], [1.0, 0.0, 0.0]), ([0.5, 0.5, -3.0], [0.2, 0.3, 0.5]),
            ([1.0, 1.0, 1.0 + math.log(4)], [0.0, 0.0, 1.0])]  # the last row: f = (1/6, 1/6, 2/3)
    logits = torch.tensor([z for z, _ in rows], dtype=torch.float64)
    targets = torch.tensor([y for _, y in rows], dtype=torch.float64)
    expected = sum(_nce(z, y) for z, y in rows) / len(rows)
    assert float(normalized_cross_entropy(logits, targets)) == pytest.approx(expected, rel=1e-5)
    # one row by hand: f = (1/6, 1/6, 2/3), g = (1/54)^(1/3) = 0.26457...
    f, g = [1 / 6, 1 / 6, 2 / 3], (1 / 54) ** (1 / 3)
    z = 2 * (g - f[0]) / math.log(g / f[0]) + (g - f[2]) / math.log(g / f[2])
    assert float(normalized_cross_entropy(logits[2:], targets[2:])) == pytest.approx(-math.log(2 / 3) + math.log(z), rel=1e-5)
    assert z < 1  # the tempered normaliser is below the plain sum of the probabilities


def test_nce_where_a_probability_equals_the_geometric_mean_takes_the_limit_g():
    # f = (1/4, 1/2, 1/8) x 8/7: g = (f1 f2 f3)^(1/3) = (1/64)^(1/3) x 8/7 = f1 exactly
    logits = torch.tensor([[math.log(2), math.log(4), 0.0]], dtype=torch.float64)
    f = [2 / 7, 4 / 7, 1 / 7]
    g = f[0]
    z = g + (g - f[1]) / math.log(g / f[1]) + (g - f[2]) / math.log(g / f[2])
    loss = normalized_cross_entropy(logits, torch.tensor([[0.0, 1.0, 0.0]], dtype=torch.float64))
    assert float(loss) == pytest.approx(-math.log(4 / 7) + math.log(z), rel=1e-5)


def test_soft_ce_and_bce_known_values():
    logits = torch.tensor([[0.0, math.log(3)], [math.log(2), 0.0]])
    targets = torch.tensor([[0.25, 0.75], [0.5, 0.0]])  # the second row sums to 1/2 (label decay)
    ce = (-(0.25 * math.log(1 / 4) + 0.75 * math.log(3 / 4)) - 0.5 * math.log(2 / 3)) / 2
    assert float(soft_cross_entropy(logits, targets)) == pytest.approx(ce, rel=1e-6)

    def bce(z: float, y: float) -> float:
        p = 1 / (1 + math.exp(-z))
        return -(y * math.log(p) + (1 - y) * math.log(1 - p))

    expected = sum(bce(z, y) for zr, yr in zip(logits.tolist(), targets.tolist()) for z, y in zip(zr, yr)) / 4
    assert float(binary_cross_entropy(logits, targets)) == pytest.approx(expected, rel=1e-6)
    assert LOSSES == {"ce": soft_cross_entropy, "nce": normalized_cross_entropy, "bce": binary_cross_entropy}


def test_augmix_jsd_known_value():
    """(1/3) sum_i KL(p_i || M) with M the mean of the three softmaxes, averaged over the batch."""
    p = [[0.5, 0.5], [0.9, 0.1], [0.2, 0.8]]
    logits = [torch.tensor([[math.log(a), math.log(b)]] * 2) for a, b in p]
    m = [sum(row[k] for row in p) / 3 for k in range(2)]
    kl = [sum(pk * math.log(pk / mk) for pk, mk in zip(row, m)) for row in p]
    assert float(augmix_jsd(*logits)) == pytest.approx(sum(kl) / 3, rel=1e-5)
    same = torch.tensor([[1.0, -1.0]])
    assert float(augmix_jsd(same, same, same)) == pytest.approx(0.0, abs=1e-7)
    # M is clamped below at 1e-7: a class that every view gives probability 0 (float32 underflow) adds nothing
    certain = torch.tensor([[0.0, -200.0]])
    assert F.softmax(certain, 1)[0, 1] == 0 and float(augmix_jsd(certain, certain)) == 0.0
