"""The table of published numbers (conf/published.csv) and ours beside them in plots/results.md."""

from __future__ import annotations

from pathlib import Path

import pytest

from mollify.config import parse_params
from mollify.errors import MollifyError
from mollify.report.published import beside_published, load_published, published_table
from tests.conftest import ROOT, default_params

HEADER = "dataset,network,method,metric,value,seeds,source,note\n"
TABLE = HEADER + """\
# a comment line
cifar100,resnet18,softaug_recipe,clean.err,0.1831,3,"Liu et al. 2023, Fig. 1",
cifar100,resnet18,softaug_recipe,clean.nll,0.700,,Table 9 row 2,read off
cifar100,wrn28_10,softaug_recipe,clean.err,0.15,1,other network,
cifar100,resnet18,baseline,corrupted.err,0.40,1,a method we did not run,
cifar10,resnet18,softaug_recipe,clean.err,0.05,1,another dataset,
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "published.csv"
    path.write_text(text)
    return path


def test_matching_and_differences(tmp_path):
    entries = load_published(_write(tmp_path, TABLE))
    assert len(entries) == 5 and entries[1].seeds is None and entries[0].seeds == 3
    summaries = {
        ("cifar100", "softaug_recipe"): {"clean": {"err": 0.2000, "nll": 0.650}},  # no corrupted metrics
        ("cifar100", "smooth"): {"clean": {"err": 0.3}},
    }
    networks = {("cifar100", "softaug_recipe"): "resnet18", ("cifar100", "smooth"): "resnet18"}
    rows = beside_published(summaries, networks, entries)
    # only dataset + method + network matches: not the wrn28_10 row, not cifar10, not the baseline
    assert [(r["metric"], r["value"]) for r in rows] == [("clean.err", 0.1831), ("clean.nll", 0.700)]
    assert rows[0]["ours"] == 0.2 and rows[0]["difference"] == pytest.approx(0.0169)
    assert rows[1]["difference"] == pytest.approx(-0.05)
    table = published_table(rows, ["cifar100"])
    # err in percent: 20.00 vs 18.31 -> +1.69; NLL as is: 0.650 vs 0.700 -> -0.050
    assert "| cifar100 | softaug_recipe | resnet18 | clean.err % | 20.00 | clean.err | 18.31 | +1.69 | 3 | Liu et al. 2023, Fig. 1 |" in table
    assert "| clean.nll | 0.650 | clean.nll | 0.700 | -0.050 | not stated | Table 9 row 2 (read off) |" in table


def test_a_metric_we_lack_has_no_difference(tmp_path):
    entries = load_published(_write(tmp_path, HEADER + "cifar100,resnet18,baseline,corrupted.err,0.40,1,src,\n"))
    rows = beside_published({("cifar100", "baseline"): {"clean": {"err": 0.3}}}, {("cifar100", "baseline"): "resnet18"}, entries)
    assert rows[0]["ours"] is None and rows[0]["difference"] is None
    assert "| corrupted.err % | - | corrupted.err | 40.00 | - |" in published_table(rows, ["cifar100"])


def test_no_match_is_said_not_left_empty():
    assert published_table([], ["demo"]).startswith("The demo dataset has no published numbers")
    assert published_table([], ["cifar10"]).startswith("No entry of conf/published.csv matches")


@pytest.mark.parametrize(("row", "message"), [
    ("cifar100,resnet18,baseline,clean.err,0.2,1,,", "line 3: source: String should have at least 1 character"),
    ("cifar100,resnet18,baseline,clean.err,0.2,1,   ,", "line 3: source: String should have at least 1 character"),
    ("cifar100,resnet18,baseline,clean.err,20.8,1,src,", "line 3: value: clean.err is a fraction in \\[0, 1\\]"),
    ("cifar100,resnet18,baseline,clean.error,0.2,1,src,", "line 3: metric: Input should be 'clean.err'"),
    ("cifar1000,resnet18,baseline,clean.err,0.2,1,src,", "line 3: dataset: unknown dataset 'cifar1000'"),
    ("cifar100,resnet18,baseline,clean.err,0.2,0,src,", "line 3: seeds: Input should be greater than 0"),
])
def test_bad_entries_are_rejected(tmp_path, row, message):
    with pytest.raises(MollifyError, match=message):
        load_published(_write(tmp_path, HEADER + "cifar100,resnet18,baseline,clean.err,0.2,1,src,\n" + row + "\n"))


def test_the_repository_table_targets_the_profiles():
    """Every entry of conf/published.csv loads and names a dataset, method and network that a profile runs."""
    entries = load_published(ROOT / "conf" / "published.csv")
    assert entries
    runs = set()
    for profile in ("paper", "nfm", "softaug", "smoothing"):
        cfg = parse_params(default_params(f"profile={profile}"))
        runs |= {(dataset, method, cfg.model_name(method, dataset)) for dataset in cfg.datasets for method in cfg.all_methods}
    assert {(e.dataset, e.method, e.network) for e in entries} <= runs


def test_the_published_ece_is_compared_with_the_variant_the_paper_reports(tmp_path):
    entries = load_published(_write(tmp_path, HEADER + "cifar100,resnet18,smooth,clean.ece,0.044,,src,\n"
                                                      "cifar100,resnet18,smooth,corrupted.ece,0.10,,src,\n"))
    run = {"paper_ece": "ece_reference", "clean": {"ece": 0.06, "ece_reference": 0.05}, "corrupted": {"ece": 0.12}}
    rows = beside_published({("cifar100", "smooth"): run}, {("cifar100", "smooth"): "resnet18"}, entries)
    assert [(r["compared"], r["ours"]) for r in rows] == [("clean.ece_reference", 0.05), ("corrupted.ece", 0.12)]
    assert rows[0]["difference"] == pytest.approx(0.006)
    assert "| clean.ece % | 5.00 | clean.ece_reference | 4.40 | +0.60 |" in published_table(rows, ["cifar100"])
    # a run without the variant (paper_ece: ece) is compared with ours
    ours = beside_published({("cifar100", "smooth"): {"clean": {"ece": 0.06}}}, {("cifar100", "smooth"): "resnet18"}, entries[:1])
    assert (ours[0]["compared"], ours[0]["ours"]) == ("clean.ece", 0.06)
