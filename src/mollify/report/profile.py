"""Does the demo data hurt a model as CIFAR-10-C hurts a CIFAR-10 model? The data criterion of the
demo, fixed before any robust recipe is compared and independent of every method: a standard-trained
model's error per corruption (mean over severities 1-5) against a published standard CIFAR-10
model's on CIFAR-10-C (conf/reference_profile.csv: RobustBench's "Standard" WideResNet-28-10).

It holds when the Spearman rank correlation of the 15 errors is at least `MIN_SPEARMAN` and the
ratio mCE / clean error is within a factor `RATIO_FACTOR` of the published model's.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from mollify import paths
from mollify.corruptions.names import STANDARD
from mollify.errors import MollifyError

MIN_SPEARMAN = 0.6  # rank correlation of the 15 per-corruption errors, at least
RATIO_FACTOR = 1.5  # mCE / clean error within this factor of the published model's (either side)


@dataclass(frozen=True)
class Profile:
    """Clean error and the error per standard corruption (fractions)."""

    clean: float
    errors: dict[str, float]

    @property
    def mce(self) -> float:
        return float(np.mean([self.errors[c] for c in STANDARD]))

    @property
    def ratio(self) -> float:
        return self.mce / self.clean if self.clean > 0 else float("inf")


@dataclass(frozen=True)
class ProfileComparison:
    ours: Profile
    reference: Profile
    spearman: float

    @property
    def ratio_factor(self) -> float:
        """How far our mCE / clean-error ratio is from the reference's, as a factor >= 1."""
        r, ref = self.ours.ratio, self.reference.ratio
        return max(r / ref, ref / r) if r > 0 else float("inf")

    @property
    def holds(self) -> bool:
        return self.spearman >= MIN_SPEARMAN and self.ratio_factor <= RATIO_FACTOR

    def table(self) -> str:
        """Markdown: each corruption's error, ours beside the reference's, and both ranks (1 = worst)."""
        ours_rank, ref_rank = _ranks(self.ours.errors), _ranks(self.reference.errors)
        lines = ["| corruption | demo baseline err % | rank | CIFAR-10-C standard WRN-28-10 err % | rank |",
                 "|---|---:|---:|---:|---:|"]
        for c in STANDARD:
            lines.append(f"| {c} | {100 * self.ours.errors[c]:.2f} | {ours_rank[c]} | "
                         f"{100 * self.reference.errors[c]:.2f} | {ref_rank[c]} |")
        lines.append(f"| clean | {100 * self.ours.clean:.2f} | | {100 * self.reference.clean:.2f} | |")
        lines.append(f"| mCE | {100 * self.ours.mce:.2f} | | {100 * self.reference.mce:.2f} | |")
        return "\n".join(lines) + "\n"

    def summary(self) -> str:
        verdict = "holds" if self.holds else "does not hold"
        return (f"Spearman rank correlation {self.spearman:.3f} (criterion >= {MIN_SPEARMAN}); mCE / clean error "
                f"{self.ours.ratio:.2f} against the reference's {self.reference.ratio:.2f}, a factor "
                f"{self.ratio_factor:.2f} apart (criterion <= {RATIO_FACTOR}): the data criterion {verdict}.")


def _ranks(errors: dict[str, float]) -> dict[str, int]:
    order = sorted(STANDARD, key=lambda c: -errors[c])
    return {c: order.index(c) + 1 for c in STANDARD}


def compare_profile(errors: dict[str, float], clean: float, reference: Profile | None = None) -> ProfileComparison:
    """Our per-corruption errors (every standard corruption) and clean error against `reference`
    (default: conf/reference_profile.csv)."""
    reference = reference or load_reference_profile()
    missing = [c for c in STANDARD if c not in errors]
    if missing:
        raise MollifyError(f"the data criterion needs the error of all 15 standard corruptions; missing {', '.join(missing)} "
                           "(list them under corrupt.corruptions)")
    rho = spearmanr([errors[c] for c in STANDARD], [reference.errors[c] for c in STANDARD]).statistic
    return ProfileComparison(Profile(clean, {c: errors[c] for c in STANDARD}), reference, float(rho))


def load_reference_profile(path: Path | None = None) -> Profile:
    """The published profile: rows `corruption,err` (fractions), `clean` and the 15 standard corruptions."""
    path = path or paths.reference_profile_file()
    try:
        rows = [line for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
        values = {r["corruption"]: float(r["err"]) for r in csv.DictReader(rows)}
    except FileNotFoundError:
        raise MollifyError(f"{path} is missing: restore it with `git checkout -- {path}`") from None
    except (KeyError, ValueError, TypeError) as e:
        raise MollifyError(f"{path}: each row must be `corruption,err` with err a fraction ({e}); "
                           f"restore it with `git checkout -- {path}`") from None
    missing = [c for c in ("clean", *STANDARD) if c not in values]
    if missing:
        raise MollifyError(f"{path} lacks the rows {', '.join(missing)}; restore it with `git checkout -- {path}`")
    return Profile(values["clean"], {c: values[c] for c in STANDARD})


def profile_section(summary: dict | None, baseline: str) -> str:
    """The results page's section on the data criterion: `baseline`'s error per corruption (a
    `mean_over_seeds` summary of the demo) beside the published profile; empty without the 15 standard
    corruptions."""
    by_corruption = (summary or {}).get("corrupted", {}).get("by_corruption", {})
    if any(c not in by_corruption for c in STANDARD):
        return ""
    result = compare_profile({c: row["err"] for c, row in by_corruption.items()}, summary["clean"]["err"])
    return (f"## Does the demo data hurt as CIFAR-10-C does? (the {baseline} recipe, mean over seeds)\n\n"
            f"Published profile: {paths.reference_profile_file()} (RobustBench's standard-trained WideResNet-28-10 on "
            f"CIFAR-10-C).\n\n{result.table()}\n{result.summary()}\n\n")
