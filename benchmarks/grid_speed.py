"""Wall time of the grid through N local queue workers against a sequential `dvc repro`.

    uv run python benchmarks/grid_speed.py                # the tests' tiny demo grid, 2 workers
    uv run python benchmarks/grid_speed.py --seeds 2 --epochs 10   # twice the runs, each longer
    uv run python benchmarks/grid_speed.py --seeds 2 --epochs 10 --threads 1   # one core a job, in both

Builds two git + DVC copies of the project with the same tiny params (`tests/conftest.py::tiny_params`:
seconds of CPU work a run), then times, one after the other, `dvc repro` in the first and
`stages/grid.py local --jobs N` in the second (shared stages, the queue, and the final `dvc repro`
that restores every run), checks that the metrics, summaries and per-run files are byte-identical
(the training logs but for their images/s), and prints both wall times, their ratio and the grid's
phases. Run it on a quiet machine (`uptime`): N workers need N
free cores (or GPUs) to be faster: with torch's default threads one training already uses every
core of a CPU, so there `--threads 1` (one core a job, as one GPU a job) shows what the queue scales.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import typer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from mollify.grid import subprocess_env  # noqa: E402
from tests.conftest import git_dvc_workspace, tiny_params  # noqa: E402


def _timed(command: list[str], cwd: Path) -> tuple[float, str]:
    """Wall seconds of `command` and its stderr (the grid's phase times)."""
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=subprocess_env(), capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"{' '.join(command)} failed in {cwd}:\n{result.stdout}\n{result.stderr}")
    return time.perf_counter() - start, result.stderr


def _results(ws: Path) -> dict[str, object]:
    """The metrics, summaries and per-run files; of the training logs all but the throughput."""
    files = [*ws.glob("metrics/**/*.json"), *ws.glob("plots/methods/**/*.json"), *ws.glob("plots/runs/**/*.csv"),
             *ws.glob("plots/runs/**/*.json")]
    results: dict[str, object] = {}
    for path in files:
        if path.parent.name == "train":
            results[str(path.relative_to(ws))] = {k: v for k, v in json.loads(path.read_text()).items() if k != "images_per_s"}
        else:
            results[str(path.relative_to(ws))] = path.read_bytes()
    return results


def main(jobs: int = typer.Option(2, help="queue workers"),
         seeds: int = typer.Option(1, help="training seeds per method (runs = 3 x seeds)"),
         epochs: int = typer.Option(2, help="training epochs of a run (the tests' 2: seconds a run)"),
         threads: int = typer.Option(0, help="torch threads of every stage, in both (OMP_NUM_THREADS; 0: torch's "
                                     "default, all cores): 1 gives each job one core, as each job one GPU")) -> None:
    if threads:
        os.environ["OMP_NUM_THREADS"] = str(threads)
    load = os.getloadavg()[0]
    params = tiny_params(seeds=list(range(seeds)), **{"train.epochs": epochs})
    with tempfile.TemporaryDirectory() as tmp:
        sequential, parallel = (git_dvc_workspace(Path(tmp) / name, params) for name in ("sequential", "grid"))
        repro_s, _ = _timed([sys.executable, "-m", "dvc", "repro"], sequential)
        grid_s, log = _timed([sys.executable, "stages/grid.py", "local", "--jobs", str(jobs)], parallel)
        ours, theirs = _results(parallel), _results(sequential)
        same = ours == theirs
        runs = len(params["seeds"]) * (len(params["methods"]) + len(params["diffaug_methods"]))
        print(f"{runs} runs on {os.cpu_count()} cores, {threads or 'all'} threads a stage, load average at the start {load:.2f}")
        print(f"sequential dvc repro:            {repro_s:7.1f} s")
        print(f"grid.py local --jobs {jobs} (all):    {grid_s:7.1f} s   ({repro_s / grid_s:.2f}x)")
        print("\n".join(line for line in log.splitlines() if line.startswith("grid time:")))
        print(f"results ({len(ours)} files; training logs without their images/s) identical: {same}")
        if not same:
            sys.exit("the grid's results differ from the sequential repro: "
                     + ", ".join(k for k in sorted(set(ours) | set(theirs)) if ours.get(k) != theirs.get(k)))


if __name__ == "__main__":
    typer.run(main)
