"""Deep ensembles (mollify.evaluation.ensemble)."""

import math

import torch

from mollify.evaluation.ensemble import ensemble_probs, ensemble_size_curve
from mollify.evaluation.metrics import classification_metrics


def test_one_model_ensemble_is_the_model():
    probs = torch.softmax(torch.randn(50, 5, generator=torch.Generator().manual_seed(0)), dim=1).double()
    labels = torch.arange(50) % 5
    assert torch.equal(ensemble_probs([probs]), probs)
    assert ensemble_size_curve([probs], labels, classification_metrics) == [{"size": 1, **classification_metrics(probs, labels)}]


def test_ensemble_averages_the_softmax():
    a = torch.tensor([[1.0, 0.0], [0.8, 0.2]], dtype=torch.float64)
    b = torch.tensor([[0.0, 1.0], [0.6, 0.4]], dtype=torch.float64)
    torch.testing.assert_close(ensemble_probs([a, b]), torch.tensor([[0.5, 0.5], [0.7, 0.3]], dtype=torch.float64))
    curve = ensemble_size_curve([a, b], torch.tensor([1, 0]), classification_metrics)
    assert [row["size"] for row in curve] == [1, 2]
    assert math.isclose(curve[1]["nll"], -(math.log(0.5) + math.log(0.7)) / 2)
