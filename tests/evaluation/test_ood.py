"""OOD detection metrics (mollify.evaluation.ood) against known answers and torchmetrics."""

import math

import pytest
import torch
from torchmetrics.functional.classification import binary_auroc, binary_roc

from mollify.evaluation.ood import auroc, fpr_at_tpr, msp, ood_metrics, roc_at, roc_curve


def test_perfect_score_separates_completely():
    id_scores, ood_scores = torch.tensor([0.9, 0.8, 0.7]), torch.tensor([0.2, 0.1])
    assert auroc(id_scores, ood_scores) == 1.0
    assert fpr_at_tpr(id_scores, ood_scores) == 0.0


def test_reversed_score_is_always_wrong():
    assert auroc(torch.tensor([0.1, 0.2]), torch.tensor([0.8, 0.9])) == 0.0
    assert fpr_at_tpr(torch.tensor([0.1, 0.2]), torch.tensor([0.8, 0.9])) == 1.0


def test_random_score_is_about_one_half():
    g = torch.Generator().manual_seed(0)
    assert abs(auroc(torch.rand(20_000, generator=g), torch.rand(20_000, generator=g)) - 0.5) < 0.01


def test_hand_computed_example():
    """5 of the 6 (in, out) pairs have the in-distribution score above the OOD one; detecting both
    OOD images (TPR 1 >= 0.95) flags one of three in-distribution images (0.4 < 0.5)."""
    id_scores, ood_scores = torch.tensor([0.9, 0.8, 0.4]), torch.tensor([0.5, 0.3])
    assert auroc(id_scores, ood_scores) == pytest.approx(5 / 6)
    assert fpr_at_tpr(id_scores, ood_scores) == pytest.approx(1 / 3)
    assert auroc(torch.tensor([0.5]), torch.tensor([0.5])) == 0.5  # a tie counts one half


def test_against_torchmetrics_on_random_data_with_ties():
    g = torch.Generator().manual_seed(1)
    id_scores = torch.randint(0, 21, (700,), generator=g).double() + 2  # shifted: AUROC away from 1/2
    ood_scores = torch.randint(0, 21, (500,), generator=g).double()
    # torchmetrics applies a sigmoid to scores outside [0, 1]: give it (30 - score) / 30, the same ranking and ties
    preds, target = (30 - torch.cat([id_scores, ood_scores])) / 30, torch.cat([torch.zeros(700), torch.ones(500)]).long()
    assert auroc(id_scores, ood_scores) == pytest.approx(float(binary_auroc(preds, target)), abs=1e-6)
    fpr, tpr, _ = binary_roc(preds, target)
    assert fpr_at_tpr(id_scores, ood_scores) == pytest.approx(float(fpr[torch.nonzero(tpr >= 0.95)[0, 0]]), abs=1e-6)
    ours = roc_curve(id_scores, ood_scores)
    torch.testing.assert_close(ours["fpr"], fpr.double(), atol=1e-6, rtol=0)
    torch.testing.assert_close(ours["tpr"], tpr.double(), atol=1e-6, rtol=0)


def test_roc_at_takes_the_best_tpr_up_to_each_fpr():
    curve = roc_curve(torch.tensor([0.9, 0.8, 0.4]), torch.tensor([0.5, 0.3]))  # points (0,0) (0,.5) (1/3,1) ...
    assert roc_at(curve, [0.0, 0.3, 0.5, 1.0]) == [(0.0, 0.5), (0.3, 0.5), (0.5, 1.0), (1.0, 1.0)]


def test_scores_of_confident_and_uniform_predictions():
    confident = torch.tensor([[0.97, 0.01, 0.01, 0.01]] * 4).double()
    uniform = torch.full((3, 4), 0.25).double()
    result = ood_metrics(confident, uniform)
    assert result["msp"] == {"auroc": 1.0, "fpr95": 0.0}
    assert result["neg_entropy"] == {"auroc": 1.0, "fpr95": 0.0}
    assert math.isclose(ood_metrics(uniform, confident)["msp"]["auroc"], 0.0)


def _rows(conf: list[float]) -> torch.Tensor:
    c = torch.tensor(conf, dtype=torch.float64)
    return torch.stack([c, 1 - c], dim=1)


def test_msp_ties_at_one_in_fp32_as_openood():
    # in fp64 the 10 ID confidences 1 - i 1e-10 and the 2 OOD ones 1 - 5.5e-10 are distinct: after the 18
    # OOD rows at 0.5 (TPR .9), the 5 ID rows below 1 - 5.5e-10 come first, then both OOD rows: FPR@95 = .5;
    # in fp32 all 12 are 1.0 and enter at one threshold: TPR 1 at FPR 1
    in_dist = _rows([1 - i * 1e-10 for i in range(1, 11)])
    ood = _rows([0.5] * 18 + [1 - 5.5e-10] * 2)
    assert fpr_at_tpr(in_dist.max(1).values, ood.max(1).values) == 0.5  # fp64 confidences
    assert ood_metrics(in_dist, ood)["msp"]["fpr95"] == 1.0
    assert torch.equal(msp(in_dist), torch.ones(10, dtype=torch.float64))
