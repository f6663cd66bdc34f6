"""The whole DAG through DVC on a tiny params override: data -> corrupt -> train -> evaluate -> plot."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

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

    for method in ("baseline", "trivaug_mollify"):
        metrics = json.loads((workdir / "metrics/demo" / f"{method}.json").read_text())
        assert set(metrics) == {"clean", "corrupted", "corrupted_extra"}
        assert set(metrics["clean"]) == {"acc", "err", "nll", "ece", "brier", "acc90", "freq90", "unc90"}
        assert metrics["corrupted"]["n_corruptions"] == 8 and metrics["corrupted_extra"]["n_corruptions"] == 1
        assert set(metrics["corrupted"]["by_severity"]) == {"1", "3", "5"}
        assert set(metrics["corrupted"]["by_group"]) == {"noise", "blur", "digital"}
        assert 0 <= metrics["clean"]["err"] <= 1
    shown = json.loads(_dvc("metrics", "show", "--json", cwd=workdir))
    files = next(iter(shown.values()))["data"]
    assert {"metrics/demo/baseline.json", "metrics/demo/trivaug_mollify.json"} <= set(files)

    assert "up to date" in _dvc("repro", cwd=workdir)  # nothing to do the second time
    plots = json.loads(_dvc("plots", "show", "--json", cwd=workdir))
    assert not plots.get("errors"), plots.get("errors")
    assert {"Error vs severity (0 = clean)", "Reliability diagram (clean test set)"} <= set(plots["data"])
    for png in ("error_vs_severity", "corruption_error", "reliability", "mollification_examples"):
        assert (workdir / "plots/figures" / f"{png}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| demo | trivaug_mollify |" in (workdir / "plots/results.md").read_text()
