"""The whole DAG through DVC on a tiny params override: data -> corrupt -> train -> evaluate -> plot."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from mollify.corruptions import STANDARD, group_of
from tests.conftest import ROOT


def _dvc(*args: str, cwd: Path) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, capture_output=True, text=True, env=env)
    assert result.returncode == 0, f"dvc {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_dvc_repro_end_to_end(workdir):
    _dvc("init", "--no-scm", "-q", cwd=workdir)
    _dvc("config", "core.analytics", "false", cwd=workdir)
    shutil.copytree(ROOT / ".dvc" / "plots", workdir / ".dvc" / "plots")
    _dvc("repro", cwd=workdir)

    corruptions = yaml.safe_load((workdir / "params.yaml").read_text())["corrupt"]["corruptions"]
    standard = [c for c in corruptions if c in STANDARD]
    for method in ("baseline", "trivaug_mollify", "diffaug"):
        metrics = json.loads((workdir / "metrics/demo" / f"{method}.json").read_text())
        assert set(metrics) >= {"clean", "corrupted", "diffaug_ensemble"}
        assert set(metrics["clean"]) == {"acc", "err", "nll", "ece", "brier", "acc90", "freq90", "unc90"}
        assert metrics["corrupted"]["n_corruptions"] == len(standard)
        assert set(metrics["corrupted"]["by_severity"]) == {"1", "3", "5"}
        assert set(metrics["corrupted"]["by_group"]) == {group_of(c) for c in standard}
        assert 0 <= metrics["clean"]["err"] <= 1
        de = metrics["diffaug_ensemble"]
        assert de["members"] == [0, 150, 300, 450] and de["corrupted_images"] == 8
        assert de["default"]["clean"] == metrics["clean"]
        assert 0 <= de["ensemble"]["corrupted"]["err"] <= 1
    diffusion = json.loads((workdir / "metrics/demo/diffusion.json").read_text())
    assert set(diffusion["denoising_mse"]) == {"t100", "t300", "t500"}
    shown = json.loads(_dvc("metrics", "show", "--json", cwd=workdir))
    files = next(iter(shown.values()))["data"]
    assert {"metrics/demo/baseline.json", "metrics/demo/diffaug.json", "metrics/demo/diffusion.json"} <= set(files)

    assert "up to date" in _dvc("repro", cwd=workdir)  # nothing to do the second time
    plots = json.loads(_dvc("plots", "show", "--json", cwd=workdir))
    assert not plots.get("errors"), plots.get("errors")
    assert {"Error vs severity (0 = clean)", "Reliability diagram (clean test set)"} <= set(plots["data"])
    assert "Predictive entropy of DiffAug images vs t" in plots["data"]
    assert (workdir / "plots/diffusion/demo/diffaug_examples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for png in ("error_vs_severity", "corruption_error", "reliability", "mollification_examples", "diffaug_entropy"):
        assert (workdir / "plots/figures" / f"{png}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| demo | trivaug_mollify |" in (workdir / "plots/results.md").read_text()
