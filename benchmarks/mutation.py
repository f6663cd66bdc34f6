"""Mutation testing of the core modules: mutmut, one module at a time, then the score table.

    uv run python benchmarks/mutation.py                       # every core module in turn, then the table
    uv run python benchmarks/mutation.py losses evaluate       # some modules
    uv run python benchmarks/mutation.py --table               # only the table of what mutants/ holds
    uv run python benchmarks/mutation.py --survivors losses    # the surviving mutants' names (`mutmut show <name>`)

Each module runs as `nice -n 19 mutmut run --max-children <jobs> <its mutants>` (default one) with the [tool.mutmut]
configuration of pyproject.toml: mutants are the core modules' functions, and each mutant runs only
the tests (of the core modules' own test files) that call the mutated function. A module resumes
where an interrupted run stopped (only its unchecked mutants run); `--retest-survivors` runs only
the surviving ones again (after adding tests: a killed mutant stays killed while its tests stay), and
`--rerun` all of them (after a source change). Not part of `.ci/run`:
the whole set takes hours on 2 cores. The score is killed / (killed + survived + timeout): a timeout
(the CPU-time limit) is not counted as a kill, since on a loaded machine a slow survivor hits it too.
The surviving mutants that cannot change behaviour are listed in the README's testing section.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import typer

ROOT = Path(__file__).resolve().parents[1]
# the core modules, most important first
MODULES = {
    "mollification": "mollify.augment.mollification",
    "soft_augmentation": "mollify.augment.soft_augmentation",
    "evaluate": "mollify.evaluation.predict",
    "summary": "mollify.evaluation.summary",
    "metrics": "mollify.evaluation.metrics",
    "losses": "mollify.training.losses",
    "train": "mollify.training.loop",
    "diffaug": "mollify.augment.diffaug",
    "diffusion": "mollify.diffusion.model",
    "ddpm_training": "mollify.diffusion.training",
    "corruptions": "mollify.corruptions.generate",
    "config": "mollify.config",
    "nfm": "mollify.augment.nfm",
    "batch": "mollify.augment.batch",
    "base": "mollify.augment.base",
    "policies": "mollify.augment.policies",
}
# mutmut's exit codes (mutmut.stats.status_by_exit_code): 1 / 3 a test failed; 0 survived; 33 / 5 no test calls it;
# the rest CPU-time limits (timeouts: on a loaded machine also slow survivors, so not counted as killed)
KILLED, SURVIVED, NO_TESTS, TIMEOUT = {1, 3}, {0}, {5, 33}, {24, -24, 36, 152, 255}


def results(module: str) -> dict[str, int | None]:
    """mutant name -> mutmut's exit code (None: not checked yet), from mutants/<file>.meta."""
    prefix = MODULES[module]
    path = ROOT / "mutants" / "src" / (prefix.replace(".", "/") + ".py")
    meta = path.with_name(path.name + ".meta")
    if not meta.exists():
        return {}
    return json.loads(meta.read_text())["exit_code_by_key"]


def score(module: str) -> dict[str, object]:
    codes = Counter()
    for code in results(module).values():
        codes["killed" if code in KILLED else "survived" if code in SURVIVED else "no tests" if code in NO_TESTS
              else "timeout" if code in TIMEOUT else "unchecked" if code is None else "other"] += 1
    tested = codes["killed"] + codes["survived"] + codes["timeout"]
    return {"module": module, "mutants": sum(codes.values()),
            **{k: codes[k] for k in ("killed", "survived", "timeout", "no tests", "unchecked", "other")},
            "score": f"{100 * codes['killed'] / tested:.1f}%" if tested else "-"}


def print_table(modules: list[str]) -> None:
    rows = [score(m) for m in modules]
    header = list(rows[0])
    print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(str(row[k]) for k in header) + " |")


def run_module(module: str, rerun: bool, retest_survivors: bool, jobs: int) -> None:
    """mutmut on this module's mutants: the unchecked ones, or only the survivors with
    `retest_survivors`, or all of them with `rerun`."""
    known = results(module)
    again = SURVIVED if retest_survivors else {None}
    names = [f"{MODULES[module]}.*"] if rerun or not known else [n for n, code in known.items() if code in again]
    if not names:
        return
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # one core per test process: the machine is shared
    subprocess.run(["nice", "-n", "19", sys.executable, "-m", "mutmut", "run", "--max-children", str(jobs), *names],
                   cwd=ROOT, env=env, check=False)


def main(modules: list[str] = typer.Argument(None, help=f"modules to run (default: all): {', '.join(MODULES)}"),
         table: bool = typer.Option(False, help="only print the table of the results in mutants/"),
         rerun: bool = typer.Option(False, help="check every mutant of the modules again, not only the unchecked ones"),
         retest_survivors: bool = typer.Option(False, help="check only the surviving mutants again (after adding tests)"),
         survivors: bool = typer.Option(False, help="only list the surviving mutants of the modules"),
         jobs: int = typer.Option(1, min=1, help="mutants checked at the same time (one core each)")) -> None:
    modules = modules or list(MODULES)
    if unknown := [m for m in modules if m not in MODULES]:
        raise typer.BadParameter(f"unknown module(s) {', '.join(unknown)}; choices: {', '.join(MODULES)}")
    if survivors:
        print("\n".join(n for m in modules for n, code in results(m).items() if code in SURVIVED))
        return
    if not table:
        for module in modules:
            run_module(module, rerun, retest_survivors, jobs)
    print_table(modules)


if __name__ == "__main__":
    typer.run(main)
