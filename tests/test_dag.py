"""Each stage re-runs on exactly what it runs: code deps derived from the imports (mollify.dag), and
resolved settings (schema defaults included) that validate writes for each stage instance."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from mollify import dag, grid, paths
from mollify.config import parse_params
from tests.conftest import ROOT, tiny_params
from tests.test_bad_inputs import _dvc, _git, workspace  # noqa: F401 (the reproduced workspace fixture)


def test_dvc_yaml_lists_exactly_the_code_each_stage_imports():
    problems = dag.mismatches(ROOT)
    assert not problems, "\n".join(problems) + "\nregenerate with `uv run python -m mollify.dag write`"


def test_a_listed_file_that_the_stage_does_not_import_is_named(tmp_path):
    for name in ("stages", "src"):
        (tmp_path / name).symlink_to(ROOT / name)
    text = (ROOT / "dvc.yaml").read_text().replace("      - stages/plot.py\n", "      - stages/plot.py\n      - src/mollify/grid.py\n", 1)
    (tmp_path / "dvc.yaml").write_text(text.replace("      - src/mollify/report/plots.py\n", "", 1))
    assert dag.mismatches(tmp_path) == ["stage plot: missing src/mollify/report/plots.py; not run by it src/mollify/grid.py"]
    dag.write_code_deps(tmp_path)
    assert dag.mismatches(tmp_path) == []
    assert (tmp_path / "dvc.yaml").read_text() == (ROOT / "dvc.yaml").read_text()


def test_training_imports_no_evaluation_and_evaluation_no_training_loop():
    src = ROOT / "src"
    train = dag.code_files(ROOT / "stages/train.py", "train", src)
    evaluate = dag.code_files(ROOT / "stages/evaluate.py", "evaluate", src)
    src = src / "mollify"
    assert not [f for f in train if (src / "evaluation") in f.parents or (src / "report") in f.parents]
    assert src / "training/loop.py" in train and src / "training/loop.py" not in evaluate
    assert src / "evaluation/run.py" in evaluate
    assert src / "config.py" not in train  # reaches the stage as its settings file
    assert src / "config.py" in dag.code_files(ROOT / "stages/validate.py", "validate", ROOT / "src")


def test_lazy_imports_inside_functions_count(tmp_path):
    script = tmp_path / "stage.py"
    script.write_text("def main():\n    from mollify.report import page\n")
    assert dag.code_files(script, "x", ROOT / "src") == {ROOT / "src/mollify/__init__.py", ROOT / "src/mollify/report/__init__.py",
                                           ROOT / "src/mollify/report/page.py"}


def test_settings_hold_each_stage_instances_keys_with_defaults_filled_in():
    raw = tiny_params(methods=["baseline", "defaults"], diffaug_methods=[], seeds=[0, 1])
    raw["recipes"]["defaults"] = {"augment": ["flip"], "mollify": {}}
    files = dag.stage_settings(raw, parse_params(raw).model_dump(mode="json"), ROOT)
    settings = paths.settings_dir()
    train = files[settings / "train/demo-defaults-1.json"]
    assert set(train) == {"seed", "device", "train", "recipes.defaults"}
    assert train["recipes.defaults"]["mollify"]["beta"] == 2 and train["recipes.defaults"]["mollify"]["roles"] == "xnb"
    assert files[settings / "data/demo.json"] == {"seed": raw["seed"], "data": parse_params(raw).data.model_dump(mode="json")}
    assert settings / "summarize/demo-baseline.json" in files and settings / "plot.json" in files
    assert not [f for f in files if "diffaug" in f.name]


def _marked(ws: Path) -> set[str]:
    """The stages `dvc status` marks as changed."""
    result = _dvc("status", cwd=ws)
    assert result.returncode == 0, result.stderr
    return set(re.findall(r"^(\S+):\s*$", result.stdout, re.M))


def _edit(ws: Path, file: str, old: str = "", new: str = "") -> set[str]:
    """Stages marked after an edit of `file` (a comment appended, or `old` replaced by `new`)."""
    path = ws / file
    text = path.read_text()
    path.write_text(text.replace(old, new, 1) if old else text + "# an edit\n")
    marked = _marked(ws)
    path.write_text(text)
    return marked


def test_an_edit_reruns_exactly_the_stages_that_run_the_edited_code(workspace):  # noqa: F811
    assert _marked(workspace) == set()
    evaluation = _edit(workspace, "src/mollify/evaluation/metrics.py")
    assert "evaluate@demo-baseline-0" in evaluation and not [s for s in evaluation if s.startswith("train")]
    assert {s for s in _edit(workspace, "src/mollify/training/loop.py") if s.startswith("train")} == {"train@demo-baseline-0"}
    assert _edit(workspace, "src/mollify/report/plots.py") == {"plot"}


def test_a_changed_schema_default_reruns_the_recipes_that_rely_on_it(workspace):  # noqa: F811
    env = {"PYTHONPATH": str(workspace / "src")}  # the workspace's own copy of mollify, edited below
    params_file = workspace / "params.yaml"
    params = yaml.safe_load(params_file.read_text())
    params["methods"].append("defaults")
    params["recipes"]["defaults"] = {"augment": ["flip"], "mollify": {}}  # beta from the schema
    params_file.write_text(yaml.safe_dump(params))
    result = grid.dvc("repro", "train@demo-defaults-0", cwd=workspace, env=env, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not [s for s in _marked(workspace) if s.startswith("train")]

    config = workspace / "src/mollify/config.py"
    text = config.read_text()
    default = re.search(r"class MollifyConfig\(Section\):.*?\n    beta: \S+ = (Field\()?2\b", text, re.S)
    assert default, "MollifyConfig.beta's default is no longer 2: update this test"
    config.write_text(text[: default.end() - 1] + "4" + text[default.end():])
    result = grid.dvc("repro", "validate", cwd=workspace, env=env, check=False)
    marked = _marked(workspace)
    config.write_text(text)
    _git("checkout", "--", "params.yaml", "dvc.lock", cwd=workspace)
    assert result.returncode == 0, result.stdout + result.stderr
    assert {s for s in marked if s.startswith("train")} == {"train@demo-defaults-0"}
