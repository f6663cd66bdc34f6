"""The grid layer (mollify.grid, stages/grid.py): which runs, their stages in dvc.yaml, the plan."""

import pytest

from mollify import grid
from mollify.config import parse_params
from tests.conftest import dvc, init_dvc, tiny_params


def test_runs_are_the_train_and_evaluate_stages_of_dvc_yaml(workdir):
    cfg = parse_params(tiny_params())
    runs = grid.runs(cfg)
    assert [r.key for r in runs] == ["demo-baseline-0", "demo-trivaug_mollify-0", "demo-diffaug-0"]
    init_dvc(workdir)
    stages = set(dvc("stage", "list", "--name-only", cwd=workdir).split())
    assert {s for r in runs for s in (r.train_stage, r.evaluate_stage)} == {s for s in stages if s.startswith(("train", "evaluate"))}
    assert {"train_diffaug@demo-diffaug-0", "evaluate_diffaug@demo-diffaug-0"} <= stages
    shared = {s for s in stages if not s.startswith(("train", "evaluate", "summarize", "plot"))}
    assert set(grid.shared_stages(cfg)) == shared


def test_steps_and_rows_per_step():
    cfg = parse_params(tiny_params(**{"train.epochs": 3, "train.batch_size": 100, "data.demo": {"train_size": 250, "test_size": 8}}))
    assert grid.steps_of(cfg, "demo") == 3 * 2  # 250 // 100 batches per epoch (the last partial one dropped)
    cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"drop_last": False})})
    assert grid.steps_of(cfg, "demo") == 3 * 3
    assert grid.steps_of(cfg, "tinyimagenet") == 3 * 1000
    by_method = {r.method: grid.network_of(cfg, r) for r in grid.runs(cfg)}
    assert by_method["baseline"] == grid.Network("small_resnet", 32, 10, 100)
    assert by_method["diffaug"].rows == 200  # the clean and the DiffAug rows in one forward pass


def test_plan_counts_done_runs_and_hours_of_the_rest():
    cfg = parse_params(tiny_params(**{"train.epochs": 10, "train.batch_size": 64, "data.demo": {"train_size": 640, "test_size": 8}}))
    seconds = {grid.network_of(cfg, r).key: s for r, s in zip(grid.runs(cfg), (0.36, 0.36, 0.72))}
    cfg = cfg.model_copy(update={"seeds": [0, 1]})
    states = {"train@demo-baseline-0": "cached", "train@demo-baseline-1": "done", "train@demo-trivaug_mollify-0": "to run"}
    rows = {row["method"]: row for row in grid.plan(cfg, states, seconds)}
    assert [rows[m]["runs"] for m in ("baseline", "trivaug_mollify", "diffaug")] == [2, 2, 2]  # two seeds
    assert [rows[m]["done"] for m in ("baseline", "trivaug_mollify", "diffaug")] == [2, 0, 0]  # unknown: to run
    assert rows["baseline"]["hours_to_run"] == 0
    assert rows["trivaug_mollify"]["hours_to_run"] == pytest.approx(2 * 10 * 10 * 0.36 / 3600)  # 2 x 100 steps x 0.36 s
    assert rows["diffaug"]["hours_to_run"] == pytest.approx(2 * 100 * 0.72 / 3600)


def test_step_seconds_is_a_positive_median_scaled_to_the_rows(monkeypatch):
    import torch

    network = grid.Network("small_resnet", 32, 10, 8)
    assert 0 < grid.step_seconds(network, torch.device("cpu"), steps=1) < 60
    ticks = iter([0.0, 1.0, 10.0, 12.0, 20.0, 23.0])  # steps of 1 (warm-up), 2 and 3 seconds
    monkeypatch.setattr(grid.time, "perf_counter", lambda: next(ticks))
    assert grid.step_seconds(network, torch.device("cpu"), steps=2, rows=2) == 2.5 * 8 / 2  # median x rows / measured


def test_stage_states_read_the_repository_given_from_any_working_directory(tmp_path, monkeypatch):
    repo, elsewhere = tmp_path / "repo", tmp_path / "elsewhere"
    for folder, items in ((repo, ["a", "b"]), (elsewhere, ["c"])):
        folder.mkdir()
        (folder / "params.yaml").write_text(f"items: {items}\n")
    (repo / "in.txt").write_text("x")
    (repo / "dvc.yaml").write_text("stages:\n  copy:\n    foreach: ${items}\n    do:\n"
                                   "      cmd: cp in.txt out-${item}.txt\n      deps: [in.txt]\n      outs: ['out-${item}.txt']\n")
    init_dvc(repo)
    dvc("repro", "copy@a", cwd=repo)
    (repo / "out-a.txt").unlink()  # not in the workspace, but in DVC's run-cache
    monkeypatch.chdir(elsewhere)  # whose params.yaml has no stage copy@a: the repository's must be read
    assert grid.stage_states(repo, ["copy@a", "copy@b"]) == {"copy@a": "cached", "copy@b": "to run"}
    dvc("repro", "copy@a", cwd=repo)
    assert grid.stage_states(repo, ["copy@a"]) == {"copy@a": "done"}
    (repo / "in.txt").write_text("y")
    assert grid.stage_states(repo, ["copy@a"]) == {"copy@a": "to run"}
