"""Summaries of metrics.md: the corrupted means (per group, per severity, mCE), the flat headline
metrics, and the mean and std of a recipe's runs over its training seeds."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from mollify.corruptions.names import EXTRA, STANDARD, group_of
from mollify.evaluation.metrics import ECE_VARIANTS


SUMMARY_KEYS = ("err", "nll", "ece")


def summary_keys(metrics: dict[str, Any]) -> tuple[str, ...]:
    """The metrics of the per-severity and per-group means: err, NLL, ECE (and the papers' ECE variants computed)."""
    return SUMMARY_KEYS + tuple(k for k in ECE_VARIANTS if k in metrics)


# acc90 and unc90 over several sets are pooled counts: each is a fraction of another metric's count
_POOLED_OVER = {"acc90": "freq90", "unc90": "err"}


def _mean(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[str, float]:
    """Means over corrupted sets, all of one size (the test set), so that counts are fractions x N:
    plain means, except acc90 / unc90, the pooled counts over the sets (acc90 = correct confident
    over confident = sum(acc90 * freq90) / sum(freq90); unc90 weighted by err likewise), 0 where no
    sample qualifies."""
    means = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    for k, weight in _POOLED_OVER.items():
        if k in keys:
            total = sum(r[weight] for r in rows)
            means[k] = sum(r[k] * r[weight] for r in rows) / total if total > 0 else 0.0
    return means


def summarize(clean: dict[str, float], table: list[dict[str, Any]]) -> dict[str, Any]:
    """The metrics file: clean metrics, and plain means over the corruption x severity `table`
    (rows: corruption, severity and metric values) -- overall, per severity and per group, with
    the 15 standard corruptions and the 4 extra ones reported apart."""
    summary: dict[str, Any] = {"clean": clean}
    for key, names in (("corrupted", STANDARD), ("corrupted_extra", EXTRA)):
        rows = [r for r in table if r["corruption"] in names]
        if not rows:
            continue
        part: dict[str, Any] = _mean(rows, tuple(clean))
        part["mce"] = part["err"]  # Hendrycks' CIFAR mCE: the plain mean error over corruptions x severities
        part["n_corruptions"] = len({r["corruption"] for r in rows})
        severities = sorted({r["severity"] for r in rows})
        keys = summary_keys(clean)
        part["by_severity"] = {str(s): _mean([r for r in rows if r["severity"] == s], keys) for s in severities}
        groups = sorted({group_of(r["corruption"]) for r in rows})
        part["by_group"] = {grp: _mean([r for r in rows if group_of(r["corruption"]) == grp], keys) for grp in groups}
        names = dict.fromkeys(r["corruption"] for r in rows)  # for Hendrycks' Relative mCE (mollify.plots.relative_mce)
        part["by_corruption"] = {c: _mean([r for r in rows if r["corruption"] == c], ("err",)) for c in names}
        summary[key] = part
    return summary


def headline(summary: dict[str, Any], seeds: int = 1) -> dict[str, Any]:
    """The flat DVC metrics of a run (what `dvc metrics show` / `dvc exp show` list): clean err /
    NLL / ECE, mCE and corrupted NLL / ECE over the 15 standard corruptions (and each ECE variant
    of the papers computed, as `<variant>` and `c_<variant>`), and the number of seeds averaged;
    None where the run has no standard corruptions."""
    corrupted = summary.get("corrupted", {})
    keys = summary_keys(summary["clean"])
    return {**{k: summary["clean"][k] for k in keys}, "mce": corrupted.get("mce"),
            **{f"c_{k}": corrupted.get(k) for k in ("nll",) + keys[2:]}, "seeds": seeds}


def mean_over_seeds(summaries: list[dict[str, Any]], seeds: list[int]) -> dict[str, Any]:
    """A recipe's summary over its training seeds: the structure of one run's summary with every
    number the mean over the runs (values equal in every run, such as counts and settings, kept
    as they are); `std` the same structure with the numbers' sample standard deviations (ddof 1;
    0 for one seed); `seeds` the seeds and `runs` each run's headline metrics."""
    return {**_combine(summaries, _seed_mean), "std": _combine(summaries, _seed_std), "seeds": list(seeds),
            "runs": {str(seed): headline(s) for seed, s in zip(seeds, summaries)}}


_DROP = object()  # a value _seed_std leaves out: settings and text have no spread


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _seed_mean(values: list[Any]) -> Any:
    if all(v == values[0] for v in values) or not all(_is_number(v) for v in values):
        return values[0]
    return float(np.mean(values))


def _seed_std(values: list[Any]) -> Any:
    if not all(_is_number(v) for v in values):
        return _DROP
    return float(np.std(values, ddof=1)) if any(v != values[0] for v in values) else 0.0


def _combine(values: list[Any], reduce: Callable[[list[Any]], Any]) -> Any:
    """`reduce` applied to each leaf of equally structured dicts (keys every dict has)."""
    if all(isinstance(v, dict) for v in values):
        combined = {k: _combine([v[k] for v in values], reduce) for k in values[0] if all(k in v for v in values)}
        return {k: v for k, v in combined.items() if v is not _DROP}
    return reduce(values)
