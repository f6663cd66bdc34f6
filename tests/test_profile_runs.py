"""Every paper profile runs end to end: `dvc repro` on the params that
`dvc exp run -S profile=<p>` composes, with tiny overrides (one dataset, one method, one epoch,
about a hundred images, a 2-step demo DDPM), against a 127.0.0.1 server that holds CIFAR-10/100
(python tarballs), TinyImageNet (zip) and the official CIFAR-10-C / CIFAR-100-C / Tiny-ImageNet-C
(tar) in their real formats, only small.

The archives are not the canonical ones, so neither are their md5s: as the download tests
monkeypatch the md5 registries, the stage processes that DVC starts patch them at start-up (a
`sitecustomize.py` on PYTHONPATH), with CIFAR-x-C's 10,000 rows per severity set to the
archives' size. Everything else is the real path: mirror URL, download, md5 check, conversion.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import yaml

from mollify import paths
from mollify.corruptions import CORRUPTIONS, STANDARD
from mollify.data import CORRUPTED, DATASETS, TINY_C_RELEASES, load_meta
from mollify.data.datasets import SVHN_TEST, archive_name, official_corrupted
from mollify.data.download import md5sum
from mollify.io import load_csv, load_json
from tests.conftest import default_params, dvc, init_dvc
from tests.data.archives import TINY_WNIDS, cifar_archive, cifar_c_archive, svhn_mat, tiny_c_archive, tinyimagenet_archive
from tests.data.loopback import serve

CIFAR_IMAGES = 26  # per CIFAR batch file: 130 train images (one step of 128) and 26 test images
C_IMAGES = 2  # CIFAR-x-C rows per severity (in the release: the 10,000 test images); Tiny-ImageNet-C: 1 per class

_SITECUSTOMIZE = '''\
import sys

if sys.argv[0].startswith("stages/"):  # the stage processes that DVC starts, not DVC itself
    import dataclasses

    from mollify.data import CORRUPTED, DATASETS, corrupted

    for registry, md5s in ((DATASETS, {clean!r}), (CORRUPTED, {official!r})):
        for name, md5 in md5s.items():
            registry[name] = dataclasses.replace(registry[name], md5=md5)
    corrupted.CIFAR_TEST_SIZE = {c_images}

    from mollify.data import ood

    ood.SVHN_TEST = dataclasses.replace(ood.SVHN_TEST, md5={svhn!r})
'''


@dataclass(frozen=True)
class Run:
    """One profile's slice and what its outputs must show (the profile's settings)."""

    dataset: str
    method: str
    model: str
    ece_bins: int = 15
    severities: tuple[int, ...] = (1, 2, 3, 4, 5)
    overrides: tuple[str, ...] = ()
    published: tuple[str, float] | None = None  # an entry of conf/published.csv for this run: (metric, value)
    paper_ece: str = "ece"  # the ECE its paper reports, beside ours
    published_ece: float | None = None  # the published ECE of this run, compared with paper_ece
    evaluations: tuple[str, ...] = ()  # the other evaluations its paper reports (summary keys)


RUNS = {
    # PreActResNet-50 on 64 px is the slowest network here: batches of 32 (36 train images, 6 test), severity 5 only
    "paper": Run("tinyimagenet", "fcr_trivaug_mollify", "preact_resnet50", severities=(5,), published=("err", 0.32),
                 paper_ece="ece_batch_mean",
                 overrides=("train.batch_size=32", "corrupt.severities=[5]"), evaluations=("ood", "certified")),
    "nfm": Run("cifar10", "nfm_recipe", "preact_resnet18_nfm", evaluations=("white_noise", "salt_pepper")),
    # one epoch: the soft crop's final phase without it (21 epochs) would cover the whole run
    "softaug": Run("cifar100", "softaug_recipe", "resnet18", published=("err", 0.1831), paper_ece="ece_right_closed",
                   overrides=("recipes.softaug_recipe.softaug.final_epochs_without=0",), evaluations=("occlusion", "crop")),
    # MC dropout: 2 passes on the clean set instead of 50 (and the sweep over 1 and 2)
    "smoothing": Run("cifar100", "smooth_mcdo", "resnet18", ece_bins=10, published=("acc", 0.790),
                     paper_ece="ece_reference", published_ece=0.025,
                     overrides=("evaluate.mc_samples=2", "evaluate.mc_sweep=[1,2]"), evaluations=("deep_ensemble",)),
}

TINY = (
    "seeds=[0]", "diffaug_methods=[]", "train.epochs=1",
    "diffusion.unet=demo", "diffusion.steps=2", "diffusion.warmup_steps=1", "diffusion.batch_size=8", "diffusion.eval_every=2",
    "diffusion.eval_images=8",
    # the DiffAug Ensemble of one member, t = 0 (tests/test_pipeline.py runs it with t > 0)
    "evaluate.diffaug_ensemble.max_t=0", "evaluate.diffaug_ensemble.corrupted_images=1",
    "evaluate.diffaug_ensemble.entropy_step=500", "evaluate.diffaug_ensemble.entropy_images=4",
    # certification: 4 images, N0 2, N 4 (the profile's N = 100,000 is hours of GPU time per model)
    "evaluate.certify.every=100", "evaluate.certify.n0=2", "evaluate.certify.n=4",
)


@pytest.fixture(scope="module")
def mirror(tmp_path_factory: pytest.TempPathFactory):
    """The loopback server with every archive, the folder of the md5-patching sitecustomize.py and
    a DVC cache directory shared by the runs."""
    served = tmp_path_factory.mktemp("served")
    every = list(CORRUPTIONS)  # the release holds all 19; the profiles take the 15 standard ones
    cifar_archive(served / archive_name(DATASETS["cifar10"].url), 10, per_batch=CIFAR_IMAGES)
    cifar_archive(served / archive_name(DATASETS["cifar100"].url), 100, per_batch=CIFAR_IMAGES)
    tinyimagenet_archive(served / archive_name(DATASETS["tinyimagenet"].url), per_class=12, val_per_class=2)
    cifar_c_archive(served / archive_name(CORRUPTED["cifar10"].url), every, n=C_IMAGES)
    cifar_c_archive(served / archive_name(CORRUPTED["cifar100"].url), every, n=C_IMAGES, num_classes=100)
    tiny_c_archive(served / archive_name(CORRUPTED["tinyimagenet"].url), every, files=1)
    original = TINY_C_RELEASES["original"]
    tiny_c_archive(served / archive_name(original.url, original.filename), every, files=1, original_frost=True)  # no md5 to patch
    svhn_mat(served / archive_name(SVHN_TEST.url))  # the far OOD set (profile=paper)
    md5s = {registry: {name: md5sum(served / archive_name(info.url)) for name, info in table.items() if info.url}
            for registry, table in (("clean", DATASETS), ("official", CORRUPTED))}
    site = tmp_path_factory.mktemp("site")
    (site / "sitecustomize.py").write_text(_SITECUSTOMIZE.format(**md5s, c_images=C_IMAGES,
                                                                 svhn=md5sum(served / archive_name(SVHN_TEST.url))))
    with serve(served) as url:
        yield url, site, tmp_path_factory.mktemp("dvc-cache")


@pytest.mark.slow
@pytest.mark.parametrize("profile", RUNS)
def test_profile_runs_end_to_end(profile, mirror, workdir: Path):
    url, site, cache = mirror
    run = RUNS[profile]
    params = default_params(f"profile={profile}", f"datasets=[{run.dataset}]", f"methods=[{run.method}]",
                      f"data.mirror={url}", *TINY, *run.overrides)
    (workdir / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    init_dvc(workdir)
    dvc("cache", "dir", str(cache), cwd=workdir)  # one cache for all runs: DVC's run-cache skips repeated stages
    dvc("repro", cwd=workdir, env={"PYTHONPATH": str(site)})

    # the dataset, downloaded from the mirror and converted
    meta = load_meta(paths.clean_dir(run.dataset))
    assert meta.num_classes == DATASETS[run.dataset].num_classes
    assert meta.source == f"{url}/{archive_name(DATASETS[run.dataset].url)}"
    # the network the profile names
    assert torch.load(paths.model_file(run.dataset, run.method), weights_only=True)["model"] == run.model
    # the official -C release, only the 15 standard corruptions, every severity
    metrics = load_json(paths.summary_file(run.dataset, run.method))
    source = metrics["corrupted_source"]
    official = official_corrupted(run.dataset, params["corrupt"]["tiny_c_release"])
    assert (source["source"], source["url"]) == ("official", f"{url}/{archive_name(official.url, official.filename)}")
    assert source["corruptions"] == list(STANDARD) and source["severities"] == list(run.severities)
    assert metrics["corrupted"]["n_corruptions"] == 15 and "corrupted_extra" not in metrics
    assert set(metrics["corrupted"]["by_severity"]) == {str(s) for s in run.severities}
    assert sorted(p.name for p in paths.corrupted_dir(run.dataset).iterdir() if p.is_dir()) == sorted(STANDARD)
    assert source["images"] == (len(TINY_WNIDS) if run.dataset == "tinyimagenet" else C_IMAGES)  # all of the release's
    # the ECE variant: bins of the reliability diagram
    assert len(load_csv(paths.run_dir(run.dataset, run.method) / "reliability.csv")) == run.ece_bins
    assert 0 <= metrics["clean"]["err"] <= 1 and 0 <= metrics["corrupted"]["err"] <= 1
    # the paper's ECE beside ours (paper: 15 bins on each test batch of 100, averaged; softaug: 10 bins (a, b];
    # smoothing: counted in (a, b], summed in [a, b)), in the metrics and in its own columns of the results table
    variants = ("ece_batch_mean", "ece_right_closed", "ece_reference")
    for part in ("clean", "corrupted"):
        assert {v for v in variants if v in metrics[part]} == ({run.paper_ece} - {"ece"})
    assert metrics["paper_ece"] == run.paper_ece
    if profile == "smoothing":  # one pass on the corrupted sets, as the reference's robustness evaluation
        assert (metrics["mc_samples"], metrics["mc_samples_corrupted"]) == (2, 1)
    report = paths.results_file().read_text()
    assert f"| {run.dataset} | {run.method} |" in report and "official -C release" in report
    header = f"| corrupted ECE % | clean {run.paper_ece} % (paper's ECE) | corrupted {run.paper_ece} % (paper's ECE) |"
    assert (header in report) == (run.paper_ece != "ece")
    if run.paper_ece != "ece":
        cells = f"| {100 * metrics['clean'][run.paper_ece]:.2f} | {100 * metrics['corrupted'][run.paper_ece]:.2f} |"
        assert cells in report
    # ours beside the published number: clean err / acc in percent and the difference in points
    if run.published is None:
        assert "No entry of conf/published.csv matches these runs" in report
    else:
        metric, value = run.published
        ours = metrics["clean"][metric]
        assert (f"| {run.dataset} | {run.method} | {run.model} | clean.{metric} % | {100 * ours:.2f} | clean.{metric} | "
                f"{100 * value:.2f} | {100 * (ours - value):+.2f} |") in report
    if run.published_ece is not None:  # the published ECE beside the variant its paper computes
        ours = metrics["clean"][run.paper_ece]
        assert (f"| clean.ece % | {100 * ours:.2f} | clean.{run.paper_ece} | {100 * run.published_ece:.2f} | "
                f"{100 * (ours - run.published_ece):+.2f} |") in report
    # the other evaluations its paper reports, and only those
    others = ("occlusion", "crop", "white_noise", "salt_pepper", "ood", "certified", "deep_ensemble")
    assert {k for k in others if k in metrics} == set(run.evaluations)
