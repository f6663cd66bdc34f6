"""Does each paper's effect show? Each claim is tested on a pair, a recipe against its control
(`recipes.<name>.control`: the same augmentations, network and schedule without the method): the
difference of the means over training seeds and its 95 % interval by Welch's t (unequal variances,
Welch-Satterthwaite degrees of freedom). The verdict says "not distinguishable" when the interval
contains 0.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

# the effect each method's paper reports, as (headline metric, per-run key of the summary's `runs`):
# lower than the control's
PAPER_CLAIMS = {
    "mollify": (("mCE", "mce"), ("corrupted NLL", "c_nll"), ("corrupted ECE", "c_ece")),
    "diffaug": (("mCE", "mce"),),
    "smoothing": (("clean NLL", "nll"),),
    "nfm": (("mCE", "mce"),),
    "softaug": (("clean err", "err"),),
}
_PERCENT = ("mce", "err", "c_ece", "ece")  # shown in percent


def welch_interval(a: list[float], b: list[float], level: float = 0.95) -> tuple[float, float, float] | None:
    """mean(a) - mean(b) and its `level` confidence interval by Welch's t, as (difference, low, high);
    None with fewer than two values on a side (no variance to estimate)."""
    if len(a) < 2 or len(b) < 2:
        return None
    diff = float(np.mean(a) - np.mean(b))
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return diff, diff, diff
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = float(stats.t.ppf(0.5 + level / 2, df)) * se
    return diff, diff - half, diff + half


def verdict(interval: tuple[float, float, float] | None) -> str:
    """For a claim of "lower": "lower (shows)" when the whole interval is below 0, "higher (the
    opposite)" when above, else "not distinguishable"."""
    if interval is None:
        return "one seed: no interval"
    _, low, high = interval
    return "lower (shows)" if high < 0 else "higher (the opposite)" if low > 0 else "not distinguishable"


def findings_table(summaries: dict[tuple[str, str], dict[str, Any]], pairs: list[tuple[str, str]],
                   features: dict[str, str]) -> str:
    """Markdown, one row per (dataset, pair, claim) for each (method, control) in `pairs` whose method
    has a feature with a paper claim (`features`: method -> a key of PAPER_CLAIMS): the method's and
    the control's mean over seeds, the difference, its 95 % interval (Welch) and the verdict.
    `summaries` are `mean_over_seeds` results (each run's headline metrics under `runs`)."""
    lines = ["| dataset | method | control | paper's claim | method | control | difference | 95 % interval | seeds | verdict |",
             "|---|---|---|---|---:|---:|---:|---|---:|---|"]
    datasets = dict.fromkeys(dataset for dataset, _ in summaries)
    for dataset in datasets:
        for method, control in pairs:
            ours, theirs = summaries.get((dataset, method)), summaries.get((dataset, control))
            if ours is None or theirs is None or method not in features:
                continue
            for label, key in PAPER_CLAIMS[features[method]]:
                a = [r[key] for r in ours["runs"].values() if r.get(key) is not None]
                b = [r[key] for r in theirs["runs"].values() if r.get(key) is not None]
                if not a or not b:
                    continue
                interval = welch_interval(a, b)
                scale, digits = (100, 2) if key in _PERCENT else (1, 3)
                means = [f"{scale * np.mean(v):.{digits}f}" for v in (a, b)]
                diff = f"{scale * (np.mean(a) - np.mean(b)):.{digits}f}"
                span = f"[{scale * interval[1]:.{digits}f}, {scale * interval[2]:.{digits}f}]" if interval else "-"
                lines.append(f"| {dataset} | {method} | {control} | lower {label} | {' | '.join(means)} | {diff} | {span} | "
                             f"{len(a)} / {len(b)} | {verdict(interval)} |")
    if len(lines) == 2:  # no row: a sentence, as the published-numbers section writes
        return (f"No method with a paper claim ({', '.join(PAPER_CLAIMS)}) is listed beside its `control` in `methods` or "
                "`diffaug_methods`: there is no verdict to give.\n")
    return "\n".join(lines) + "\n"
