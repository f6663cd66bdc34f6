"""The GPU check's dry run (benchmarks/gpu_check.py --device cpu --tiny): the script that a lent GPU
runs first must not fail there for a reason a CPU shows here; and its wheel list."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from mollify.grid import Network

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"


def _gpu_check(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.syspath_prepend(str(SCRIPT.parent))  # its own imports (model_throughput) sit beside it
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict]:
    out = tmp_path_factory.mktemp("gpu_check")
    result = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--tiny", "--out", str(out / "report.json"),
                             "--step-times", str(out / "step_times.json")], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads((out / "report.json").read_text()), json.loads((out / "step_times.json").read_text())


def test_every_method_trains_with_a_finite_falling_loss(dry_run: tuple[dict, dict], monkeypatch: pytest.MonkeyPatch) -> None:
    report, _ = dry_run
    gpu_check = _gpu_check(monkeypatch)
    rows = report["training"]
    assert [(r["network"], r["method"], r["compiled"]) for r in rows] == [
        (net, method, False) for net, _, _ in gpu_check.TINY_NETWORKS for method in gpu_check.METHODS]
    for row in rows:
        assert row["status"] == "ok", row
        losses = row["epoch_losses"]
        # 4 epochs of 3 steps: each epoch's mean loss, the last below the first
        assert len(losses) == 4 and all(math.isfinite(v) for v in losses), row
        assert row["loss_finite"] and row["loss_falling"] and losses[-1] < losses[0], row
        assert row["images_per_s"] > 0 and row["step_s"] > 0 and row["gflop_per_step"] > 0, row
        assert row["augment_share"] > 0 and row["input_share"] > 0, row
    by_method = {r["method"]: r for r in rows}
    # the extra views are rows of the step: DiffAug's and AugMix-JSD's, counted in FLOPs too
    assert by_method["diffaug"]["rows"] == 2 * by_method["plain"]["rows"]
    assert by_method["augmix_jsd"]["rows"] == 3 * by_method["plain"]["rows"]
    assert by_method["augmix_jsd"]["gflop_per_step"] > 2.5 * by_method["plain"]["gflop_per_step"]
    summary = report["summary"]
    assert summary["ok"] == summary["rows"] == len(rows) and not summary["failed"] and not summary["not_falling"]


def test_other_sections_and_imports(dry_run: tuple[dict, dict]) -> None:
    report, _ = dry_run
    precision = report["diffaug_precision"]
    assert precision["status"] == "ok" and [r["t"] for r in precision["rows"]] == [0, 500, 999]
    for row in precision["rows"]:
        # autocast really lowers the precision (an error above 0) and stays far from garbage
        assert row["status"] == "ok" and row["bf16_finite"] and row["fp16_finite"], row
        assert 0 < row["fp16_rel_l2"] < row["bf16_rel_l2"] < 0.2, row
    evaluation = report["evaluation"]
    assert evaluation["status"] == "ok", evaluation
    for path in ("clean", "corrupted", "diffaug_ensemble", "certification"):
        assert evaluation[path]["status"] == "ok", evaluation[path]
    for metrics in (evaluation["clean"], evaluation["diffaug_ensemble"], *evaluation["corrupted_by_name"].values()):
        assert 0 <= metrics["acc"] <= 1 and math.isfinite(metrics["nll"])
    assert set(evaluation["certification"]["certified_accuracy"]) == {"0.0", "0.25", "0.5"}
    assert evaluation["clean"]["acc"] > 0.2  # the trained model on held-out images of its classes (chance: 0.1)
    assert report["ddp"]["status"].startswith("skipped: no CUDA devices")
    assert report["device"]["type"] == "cpu" and report["peak_bf16"]["spec_tflops"] is None
    # everything imported is in the GPU image or carried as a wheel
    assert report["imports_outside_image"] == []
    assert {"torch", "pydantic", "diffusers", "torch-dct", "simplejpeg"} <= set(report["packages"])


def test_step_times_in_grid_plan_format(dry_run: tuple[dict, dict]) -> None:
    report, step_times = dry_run
    assert report["step_times"]["status"] == "ok" and list(step_times) == ["cpu"]
    rows = {r["method"]: r for r in report["training"]}
    seconds = step_times["cpu"]
    for classes in (10, 100):  # every class count of a 32-px dataset
        plain = Network("small_resnet", 32, classes, 8).key
        assert seconds[plain] == max(r["step_s"] for r in rows.values() if r["rows"] == 8)
        assert seconds[Network("small_resnet", 32, classes, 16).key] == rows["diffaug"]["step_s"]
        assert seconds[Network("small_resnet", 32, classes, 24).key] == rows["augmix_jsd"]["step_s"]
    assert len(seconds) == 6


def test_a_missing_wheel_is_named(tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text("import sys\nsys.modules['torch_dct'] = None  # as if not installed\n")
    result = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--tiny", "--out", str(tmp_path / "r.json")],
                            cwd=ROOT, capture_output=True, text=True, timeout=120, env={"PYTHONPATH": str(tmp_path),
                                                                                        "PATH": "/usr/bin:/bin"})
    assert result.returncode == 1
    assert "missing wheels: torch-dct (no module torch_dct)." in result.stderr
    assert "benchmarks/gpu_wheels.sh" in result.stderr and not (tmp_path / "r.json").exists()


def test_wheel_list_is_pinned_to_the_lock_and_carries_what_the_image_lacks(monkeypatch: pytest.MonkeyPatch) -> None:
    lock = {p["name"]: p["version"] for p in tomllib.loads((ROOT / "uv.lock").read_text())["package"]}
    lines = [line.split("#")[0].strip() for line in (ROOT / "benchmarks" / "gpu_wheels.txt").read_text().splitlines()]
    pins = dict(line.split("==") for line in lines if line)
    assert pins == {name: lock[name] for name in pins}
    gpu_check = _gpu_check(monkeypatch)
    assert set(gpu_check.CARRIED.values()) <= set(pins)
    assert not set(pins) & gpu_check.IMAGE_PACKAGES - {"typing-extensions", "zipp"}  # the image may hold older ones than pydantic and importlib-metadata need


@pytest.mark.slow
def test_ddp_on_cpu_with_the_rows_of_one_method(tmp_path: Path) -> None:
    """2-process DDP through torchrun (gloo on the CPU), as the check runs it on two GPUs (slow: it
    starts two more Python processes)."""
    result = subprocess.run([sys.executable, str(SCRIPT), "--device", "cpu", "--tiny", "--ddp", "on", "--method", "plain",
                             "--out", str(tmp_path / "r.json")], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert [r["method"] for r in report["training"]] == ["plain"] and report["evaluation"]["status"] == "ok"
    ddp = report["ddp"]
    assert ddp["status"] == "ok" and ddp["world_size"] == 2 and ddp["steps"] == 12, ddp
    assert ddp["loss_finite"] and ddp["loss_falling"] and ddp["images_per_s"] > 0, ddp
