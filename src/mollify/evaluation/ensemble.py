"""Deep ensembles (Lakshminarayanan et al. 2017) as the spatial-smoothing paper compares them
(xxxnell/spatial-smoothing `models/ensemble.py`: the log of the mean softmax of the members):
the predictive distribution of an ensemble is the mean of its members' softmax."""

from __future__ import annotations

from typing import Any, Callable

import torch


def ensemble_probs(member_probs: list[torch.Tensor]) -> torch.Tensor:
    """Mean softmax over the members (each (N, K); MC-dropout members already averaged over passes)."""
    return torch.stack(member_probs).mean(dim=0)


def ensemble_size_curve(member_probs: list[torch.Tensor], labels: torch.Tensor,
                        metrics: Callable[[torch.Tensor, torch.Tensor], dict[str, float]]) -> list[dict[str, Any]]:
    """Metrics of the ensembles of the first k members, k = 1 .. M (the paper's NLL / accuracy /
    ECE against ensemble size)."""
    return [{"size": k, **metrics(ensemble_probs(member_probs[:k]), labels)} for k in range(1, len(member_probs) + 1)]
