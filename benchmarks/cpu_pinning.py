"""Do pinned CPU kernels make training bit-identical across instruction sets? Trains the same short
run (small_resnet, baseline recipe, demo images) in fresh processes under each setting of torch's
kernel dispatch (ATEN_CPU_CAPABILITY), oneDNN's ISA cap (ONEDNN_MAX_CPU_ISA) and the thread count,
and prints per setting the SHA-256 of the final weights, the largest weight difference to the first
setting, the final training loss and the wall time.

    uv run python benchmarks/cpu_pinning.py --images 1024 --epochs 2

A machine can run only the ISAs it has: on an AVX2-only CPU, `avx512` falls back to the best one
available, so compare the hashes of the settings both machines can run.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import typer

AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2"}
SCALAR = {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41", "MKL_CBWR": "COMPATIBLE"}
SETTINGS = [  # (label, environment)
    ("native, 2 threads", {"OMP_NUM_THREADS": "2"}),
    ("native, 2 threads, again", {"OMP_NUM_THREADS": "2"}),
    ("native, 1 thread", {"OMP_NUM_THREADS": "1"}),
    ("avx2, 2 threads", {**AVX2, "OMP_NUM_THREADS": "2"}),
    ("avx2, 1 thread", {**AVX2, "OMP_NUM_THREADS": "1"}),
    ("scalar, 1 thread", {**SCALAR, "OMP_NUM_THREADS": "1"}),
    ("scalar, 1 thread, again", {**SCALAR, "OMP_NUM_THREADS": "1"}),
]
_PINNING = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_CBWR", "OMP_NUM_THREADS")

_CHILD = """
import hashlib, json, sys, time
import torch
from mollify.augment import BatchRecipe, compose
from mollify.data.synthetic import generate
from mollify.device import Normalize, machine_info
from mollify.models import create_model
from mollify.training.loop import TrainSettings, train
from mollify.training.losses import LOSSES
n, epochs = int(sys.argv[1]), int(sys.argv[2])
x, y = generate(n, 0)
torch.manual_seed(0)
model = create_model("small_resnet", 10).to(memory_format=torch.channels_last)
settings = TrainSettings(epochs=epochs, batch_size=128, lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4, warmup_epochs=1, seed=0)
start = time.perf_counter()
history = train(model, torch.from_numpy(x), torch.from_numpy(y), compose(["flip", "crop"], 4, 15),
                Normalize((0.5,) * 3, (0.25,) * 3, torch.device("cpu"), True), BatchRecipe(10, None), LOSSES["ce"],
                settings, show_progress=False)
seconds = time.perf_counter() - start
flat = torch.cat([p.detach().double().flatten() for p in model.state_dict().values() if p.is_floating_point()])
torch.save(flat, sys.argv[3])
print(json.dumps({"sha": hashlib.sha256(flat.numpy().tobytes()).hexdigest()[:16], "loss": history[-1]["train_loss"],
                  "seconds": seconds, "machine": machine_info(torch.device("cpu"))}))
"""


def main(images: int = 1024, epochs: int = 2) -> None:
    import torch

    first = None
    typer.echo("| setting | torch kernels | weights SHA-256 | max abs diff to the first | final loss | train s |")
    typer.echo("|---|---|---|---:|---:|---:|")
    for label, env in SETTINGS:
        path = f"/tmp/cpu_pinning_{hashlib.md5(label.encode()).hexdigest()[:8]}.pt"
        clean = {k: v for k, v in os.environ.items() if k not in _PINNING}
        out = subprocess.run([sys.executable, "-c", _CHILD, str(images), str(epochs), path], env={**clean, **env},
                             capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        result = json.loads(out)
        weights = torch.load(path)
        first = weights if first is None else first
        diff = float((weights - first).abs().max())
        typer.echo(f"| {label} | {result['machine']['cpu_capability']} | {result['sha']} | {diff:.3g} | "
                   f"{result['loss']:.6f} | {result['seconds']:.1f} |")
        os.remove(path)


if __name__ == "__main__":
    typer.run(main)
