"""What each stage of dvc.yaml depends on, derived rather than maintained by hand.

- Code: the files of `mollify` a stage's CLI (`stages/<name>.py`) imports, followed through every
  `import` statement of every module it reaches (also those inside functions), with each package's
  `__init__.py` on the way. `mollify.config` is left out (except for `validate`, which runs it): what it
  decides for a stage reaches DVC as that stage's resolved settings file, so that a change of
  validation code re-runs exactly the stages whose settings it changes.
- Settings: for each stage instance, the values of the param keys its dvc.yaml `params:` lists, read
  from the validated config with every schema default filled in (`data/settings/<stage>/<item>.json`,
  written by `validate`). A changed default changes the files of the stages that use it, and DVC
  re-runs those, under a plain `dvc repro` too.

`uv run python -m mollify.dag check` compares dvc.yaml's code deps with the derived ones; `write`
rewrites them in place (comments and every other dep kept).
"""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from mollify import paths
from mollify.errors import MollifyError
from mollify.io import save_json

SETTINGS_MODULE = "mollify.config"
_CMD = re.compile(r"python (stages/\w+\.py)")
_ITEM = re.compile(r"\$\{item(?:\.(\w+))?\}")
_VAR = re.compile(r"^\$\{(\w+)\}$")
_STAGE_LINE = re.compile(r"^  ([\w-]+):\s*(?:&\w+)?\s*(?:#.*)?$")


def _module_file(module: str, src: Path) -> Path | None:
    base = src.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imports(path: Path, src: Path) -> set[str]:
    """The `mollify` modules one file names in its import statements (a `from M import n` names M.n
    too when that is a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "mollify")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "mollify":
            found.add(node.module)
            lazy = _lazy_names(node.module, src)
            found.update(f"{node.module}.{lazy.get(a.name, a.name)}" for a in node.names
                         if _module_file(f"{node.module}.{lazy.get(a.name, a.name)}", src))
    return found


def _lazy_names(package: str, src: Path) -> dict[str, str]:
    """A package that imports its names on first use (a PEP 562 `__getattr__` over a `_MODULES`
    table, as mollify.augment): name -> the submodule that defines it."""
    init = src.joinpath(*package.split("."), "__init__.py")
    if not init.is_file():
        return {}
    for node in ast.parse(init.read_text()).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "_MODULES" for t in node.targets):
            return ast.literal_eval(node.value)
    return {}


def code_files(script: Path, stage: str, src: Path = Path("src")) -> set[Path]:
    """Every file of `mollify` (under `src`) that `script` can run: its import closure with the
    packages' __init__s."""
    seen: set[str] = set()
    todo = sorted(_imports(script, src))
    while todo:
        module = todo.pop()
        parts = module.split(".")
        for k in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__ first
            name = ".".join(parts[:k])
            if name in seen or (name == SETTINGS_MODULE and stage != "validate") or _module_file(name, src) is None:
                continue
            seen.add(name)
            todo.extend(_imports(_module_file(name, src), src))
    return {_module_file(m, src) for m in seen}


def collapse(files: set[Path], src: Path) -> list[str]:
    """Paths as dvc.yaml lists them (src/...), a folder in place of its files where every .py file
    under it is listed."""
    def covered(folder: Path) -> bool:
        return all(f in files for f in folder.rglob("*.py") if "__pycache__" not in f.parts)

    out: set[str] = set()
    for f in files:
        top = f
        for parent in f.parents:
            if parent == src or not covered(parent):
                break
            top = parent
        out.add(f"src/{top.relative_to(src).as_posix()}")
    return sorted(out)


def load_stages(dvc_yaml: Path = Path("dvc.yaml")) -> dict[str, dict[str, Any]]:
    """The stage definitions of dvc.yaml (merge keys resolved), by name."""
    try:
        return yaml.safe_load(dvc_yaml.read_text())["stages"]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as e:
        raise MollifyError(f"cannot read the stages of {dvc_yaml} ({e}); restore it with `git checkout dvc.yaml`.") from None


def _definition(stage: dict[str, Any]) -> dict[str, Any]:
    return stage.get("do", stage)


def derived_code_deps(root: Path = Path(".")) -> dict[str, list[str]]:
    """Stage name -> the code deps it should list: its CLI script and the mollify files it runs."""
    out = {}
    for name, stage in load_stages(root / "dvc.yaml").items():
        cmd = _CMD.search(_definition(stage).get("cmd", ""))
        if cmd:
            script = root / cmd.group(1)
            out[name] = [cmd.group(1), *collapse(code_files(script, name, root / "src"), root / "src")]
    return out


def listed_code_deps(root: Path = Path(".")) -> dict[str, list[str]]:
    """Stage name -> the code deps dvc.yaml lists (entries under stages/ and src/)."""
    out = {}
    for name, stage in load_stages(root / "dvc.yaml").items():
        deps = _definition(stage).get("deps", [])
        out[name] = [d for d in deps if isinstance(d, str) and d.startswith(("stages/", "src/"))]
    return out


def mismatches(root: Path = Path(".")) -> list[str]:
    """One line per stage whose listed code deps differ from the derived ones."""
    listed, derived = listed_code_deps(root), derived_code_deps(root)
    lines = []
    for name, want in derived.items():
        have = listed.get(name, [])
        if sorted(have) != sorted(want):
            missing, extra = sorted(set(want) - set(have)), sorted(set(have) - set(want))
            lines.append(f"stage {name}: " + "; ".join(
                ([f"missing {', '.join(missing)}"] if missing else []) + ([f"not run by it {', '.join(extra)}"] if extra else [])))
    return lines


def write_code_deps(root: Path = Path(".")) -> None:
    """Rewrite the code deps of each stage in dvc.yaml (each stage's `deps:` block keeps its other
    entries and the file its comments)."""
    derived = derived_code_deps(root)
    lines = (root / "dvc.yaml").read_text().splitlines(keepends=True)
    out, stage, in_deps = [], None, False
    for line in lines:
        stripped = line.strip()
        if name := _STAGE_LINE.match(line):  # a stage name under `stages:`
            stage, in_deps = name.group(1), False
        if in_deps:
            if stripped.startswith("- "):
                if stripped[2:].startswith(("stages/", "src/")):
                    continue  # replaced below
                out.append(line)
                continue
            in_deps = False
        out.append(line)
        if stripped == "deps:" and stage in derived:
            in_deps = True
            item_indent = line[: len(line) - len(line.lstrip())] + "  "
            out.extend(f"{item_indent}- {dep}\n" for dep in derived[stage])
    (root / "dvc.yaml").write_text("".join(out))


def _resolve(value: str, item: Any) -> str:
    return _ITEM.sub(lambda m: str(item[m.group(1)] if m.group(1) else item), value)


def _instances(stage: dict[str, Any], params: dict[str, Any]) -> list[Any]:
    """The items of a foreach / matrix stage (a dict per matrix point), or [None] for a plain stage."""
    def values(spec: Any) -> list[Any]:
        var = _VAR.match(spec) if isinstance(spec, str) else None
        return list(params[var.group(1)]) if var else list(spec)

    if "foreach" in stage:
        return values(stage["foreach"])
    if "matrix" in stage:
        points: list[dict[str, Any]] = [{}]
        for key, spec in stage["matrix"].items():
            points = [{**p, key: v} for p in points for v in values(spec)]
        return points
    return [None]


def _lookup(resolved: dict[str, Any], key: str) -> Any:
    value: Any = resolved
    for part in key.split("."):
        value = value[part]
    return value


def stage_settings(params: dict[str, Any], resolved: dict[str, Any], root: Path = Path(".")) -> dict[Path, dict[str, Any]]:
    """Settings file -> content for every stage instance that lists `params:`: the resolved values
    (defaults filled in) of exactly those keys, in the file under data/settings/ that the stage lists
    in its deps. `params` is the raw params file (for the foreach / matrix items), `resolved` the
    validated config as a dict."""
    out: dict[Path, dict[str, Any]] = {}
    prefix = paths.settings_dir().as_posix() + "/"
    for name, stage in load_stages(root / "dvc.yaml").items():
        keys = _definition(stage).get("params")
        if not keys:
            continue
        files = [d for d in _definition(stage).get("deps", []) if isinstance(d, str) and d.startswith(prefix)]
        if len(files) != 1:
            raise MollifyError(f"dvc.yaml: stage {name} lists params but {len(files)} settings files under {prefix} in its "
                               "deps; list exactly one (e.g. data/settings/<stage>/${item}.json).")
        for item in _instances(stage, params):
            def at(text: str) -> str:
                return text if item is None else _resolve(text, item)

            out[Path(at(files[0]))] = {at(key): _lookup(resolved, at(key)) for key in keys}
    return out


def write_settings(files: dict[Path, dict[str, Any]]) -> None:
    """Write the settings files whose content changed (the others keep their bytes and times) and
    remove those of stage instances no longer in the grid."""
    for path, content in files.items():
        try:
            same = json.loads(path.read_text()) == content
        except (OSError, ValueError):
            same = False
        if not same:
            save_json(path, content)
    for stale in set(paths.settings_dir().rglob("*.json")) - set(files):
        stale.unlink()


def main(argv: list[str]) -> int:
    if argv[1:] == ["write"]:
        write_code_deps()
        return 0
    if argv[1:] in ([], ["check"]):
        lines = mismatches()
        for line in lines:
            print(line)
        if lines:
            print("dvc.yaml's code deps differ from what the stages import: run `uv run python -m mollify.dag write`")
        return 1 if lines else 0
    print("usage: python -m mollify.dag [check | write]")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
