"""Out-of-distribution detection from a classifier's predictive distribution (DiffAug, Sastry et
al. 2024, evaluated with OpenOOD: Jingkang50/OpenOOD `openood/evaluators/metrics.py`).

As OpenOOD: OOD is the positive class; a score is larger for in-distribution inputs and is
negated to rank OOD first; AUROC is the area under that ROC curve, FPR@95 the false-positive rate
(in-distribution images flagged as OOD) at the first threshold whose true-positive rate (OOD images
flagged) reaches 95%. Scores are computed from the predictive distribution p, so that the
default evaluation and the DiffAug Ensemble (mean softmax) are scored alike.
"""

from __future__ import annotations

from typing import Callable

import torch

from mollify.evaluation.predict import predictive_entropy



def msp(probs: torch.Tensor) -> torch.Tensor:
    """Max softmax probability (Hendrycks & Gimpel 2017) as OpenOOD's postprocessor takes it
    (openood/postprocessors/base_postprocessor.py:21-22: torch.softmax of the fp32 logits, then its
    max): from fp32 probabilities, so that confidences within fp32 rounding of 1.0 tie at 1.0 and
    enter the ROC curve at one threshold, as in OpenOOD's FPR@95. Exact where the evaluation's
    softmax is fp32 (`evaluate.softmax`), the fp32 rounding of ours otherwise."""
    return probs.float().max(dim=1).values.double()


# OpenOOD's MSP postprocessor and the negative predictive entropy
SCORES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "msp": msp,
    "neg_entropy": lambda probs: -predictive_entropy(probs),
}


def roc_curve(id_scores: torch.Tensor, ood_scores: torch.Tensor) -> dict[str, torch.Tensor]:
    """The ROC curve with OOD positive and -score as the detector (sklearn's roc_curve(ood, -score)
    with drop_intermediate=False): one point per distinct threshold, from (0, 0) to (1, 1)."""
    detector = -torch.cat([id_scores, ood_scores]).double()
    is_ood = torch.cat([torch.zeros(len(id_scores)), torch.ones(len(ood_scores))]).double()
    order = torch.argsort(detector, descending=True, stable=True)
    detector, is_ood = detector[order], is_ood[order]
    # the last index of each run of equal detector values: a threshold admits all tied samples at once
    last = torch.cat([torch.nonzero(detector[1:] != detector[:-1]).flatten(), torch.tensor([len(detector) - 1])])
    tp = torch.cumsum(is_ood, 0)[last]
    fp = (last + 1).double() - tp
    zero = torch.zeros(1, dtype=torch.float64)
    return {"fpr": torch.cat([zero, fp / len(id_scores)]), "tpr": torch.cat([zero, tp / len(ood_scores)]),
            "threshold": torch.cat([torch.tensor([float("inf")], dtype=torch.float64), detector[last]])}


def roc_at(curve: dict[str, torch.Tensor], fprs: list[float]) -> list[tuple[float, float]]:
    """(fpr, tpr) at each of `fprs`: the largest TPR of the curve's points with FPR <= fpr (the
    ROC curve drawn as steps, sampled on a fixed grid for plot data)."""
    return [(f, float(curve["tpr"][curve["fpr"] <= f].max())) for f in fprs]


def auroc(id_scores: torch.Tensor, ood_scores: torch.Tensor) -> float:
    """Area under the ROC curve (trapezoids; ties count one half)."""
    curve = roc_curve(id_scores, ood_scores)
    return float(torch.trapezoid(curve["tpr"], curve["fpr"]))


def fpr_at_tpr(id_scores: torch.Tensor, ood_scores: torch.Tensor, tpr: float = 0.95) -> float:
    """FPR at the first ROC point with TPR >= `tpr` (OpenOOD's `fpr_list[np.argmax(tpr_list >= tpr_th)]`)."""
    curve = roc_curve(id_scores, ood_scores)
    return float(curve["fpr"][torch.nonzero(curve["tpr"] >= tpr)[0, 0]])


def ood_metrics(id_probs: torch.Tensor, ood_probs: torch.Tensor) -> dict[str, dict[str, float]]:
    """AUROC and FPR@95 of each score of SCORES."""
    out = {}
    for name, score in SCORES.items():
        i, o = score(id_probs), score(ood_probs)
        out[name] = {"auroc": auroc(i, o), "fpr95": fpr_at_tpr(i, o)}
    return out
