"""The CUDA path in one prepared run: every paper network x batch-level method trained for a few
hundred steps on device-resident synthetic data (bf16 autocast, channels_last, eager and a compiled
subset), the one-step DiffAug estimate in bf16 / fp16 against fp32, one model through the clean /
corrupted / DiffAug-Ensemble / certification paths, and 2-process DDP where a second GPU exists.
One JSON report, plus the step times in the format `stages/grid.py plan --step-times` reads.

    python3 benchmarks/gpu_check.py --out gpu_check.json                      # one CUDA device, <= 8 min
    uv run python benchmarks/gpu_check.py --device cpu --tiny --out /tmp/c.json  # the dry run (tests)

It runs without DVC, and in the GPU image (torch, torchvision, typer, rich, pyyaml, numpy, scipy)
with the wheels of benchmarks/gpu_wheels.txt on PYTHONPATH; a missing one is named before anything
runs. Each row's error is caught and written into its row, so one failure does not end the run; the
report is rewritten after each row, so a run killed at its time limit leaves what it did.
See docs/gpu-check.md for how to run it on a lent GPU and how to read the report.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

# module -> wheel of benchmarks/gpu_wheels.txt that provides it where the GPU image lacks it
CARRIED = {"pydantic": "pydantic", "pydantic_core": "pydantic-core", "annotated_types": "annotated-types",
           "typing_inspection": "typing-inspection", "torch_dct": "torch-dct", "importlib_metadata": "importlib-metadata",
           "diffusers": "diffusers", "simplejpeg": "simplejpeg"}

# The GPU image's packages (the device tool's KINDS.md, read there on 2026-11-17): with the wheels of
# gpu_wheels.txt, all that the run may import; `imports_outside_image` in the report names any other.
IMAGE_PACKAGES = frozenset("""
absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch build certifi
charset-normalizer chex click cloudpickle cmake colorama contourpy coverage cuda-bindings cuda-core cuda-pathfinder
cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops equinox etils execnet filelock flatbuffers flax fonttools
formulaic frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx huggingface-hub humanize hypothesis idna
imageio iniconfig interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin jaxlib jaxtyping jinja2 joblib kiwisolver
lazy-loader lightning lightning-utilities linear-operator lineax llvmlite lxml markdown markdown-it-py markupsafe
matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack multidict multipledispatch mypy-extensions nanobind narwhals
networkx ninja numba numba-cuda numpy numpyro nvidia-cublas nvidia-cuda-cupti nvidia-cuda-nvrtc nvidia-cuda-runtime
nvidia-cudnn-cu13 nvidia-cufft nvidia-cufile nvidia-curand nvidia-cusolver nvidia-cusparse nvidia-cusparselt-cu13
nvidia-ml-py nvidia-nccl-cu13 nvidia-nvjitlink nvidia-nvshmem-cu13 nvidia-nvtx onnx onnx-ir onnxruntime onnxscript
opencv-python-headless optax opt-einsum opt-einsum-fx optimistix orbax-checkpoint packaging pandas pathspec patsy
peft pillow pip pluggy portalocker prometheus-client propcache protobuf psutil pyarrow pybind11 py-cpuinfo pygments
pyparsing pyproject-hooks pyre-extensions pytest pytest-benchmark pytest-cov pytest-mock pytest-timeout pytest-xdist
python-dateutil pytorch-lightning pyyaml regex requests rich sacrebleu safetensors scikit-build-core scikit-image
scikit-learn scipy seaborn sentencepiece sentence-transformers setuptools shellingham simplejson six sortedcontainers
statsmodels sympy tabulate tensorboard tensorboard-data-server tensorstore threadpoolctl tifffile tiktoken timm
tokenizers toolz torch torchaudio torchdiffeq torch-geometric torchmetrics torchvision tqdm transformers treescope
triton typer typing-extensions typing-inspect urllib3 uvloop wadler-lindig werkzeug wheel wrapt xarray xxhash yarl zipp
""".split())
# imported in this project's environment but not needed in the image: torch's optional pydot, and the HTTP
# client of huggingface-hub 2.x (the image's 1.x, which diffusers accepts, uses httpx)
NOT_NEEDED_THERE = frozenset({"pydot", "httpx2", "httpcore2", "truststore"})


def wheel_names(path: Path = ROOT / "benchmarks" / "gpu_wheels.txt") -> set[str]:
    """The distributions gpu_wheels.txt carries (its NAME==VERSION lines)."""
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return {normalized(line.split("==")[0]) for line in lines if line}


def normalized(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def missing_wheels() -> list[str]:
    """The carried modules that are not installed, each with its wheel; when all are, the error of
    any that does not import (diffusers checks the versions of its needs on import)."""
    missing = [f"{wheel} (no module {module})" for module, wheel in CARRIED.items() if importlib.util.find_spec(module) is None]
    if missing:
        return missing
    for module, wheel in CARRIED.items():
        try:
            importlib.import_module(module)
            if module == "diffusers":
                from diffusers import UNet2DModel  # noqa: F401  (the lazy package imports its needs here)
        except Exception as e:  # ImportError, or a version check of diffusers' needs
            missing.append(f"{wheel} (import {module}: {type(e).__name__}: {e})")
    return missing


if __name__ == "__main__" and "--ddp-worker" not in sys.argv and (missing := missing_wheels()):
    sys.exit("gpu_check: missing wheels: " + "; ".join(missing) + ".\nDownload them here with "
             "`benchmarks/gpu_wheels.sh` and install them there first: `python3 -m pip install -q --no-index "
             "--no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && "
             "export PYTHONPATH=/tmp/site:src` (docs/gpu-check.md).")

import torch  # noqa: E402
import typer  # noqa: E402
import yaml  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from model_throughput import peak_tflops  # noqa: E402
from mollify.augment import DiffAug, NormalizedDiffAug, ensemble_timesteps  # noqa: E402
from mollify.config import MethodConfig, TrainConfig  # noqa: E402
from mollify.corruptions.generate import corrupt  # noqa: E402
from mollify.corruptions.names import EXTRA, STANDARD  # noqa: E402
from mollify.device import Normalize, autocast  # noqa: E402
from mollify.diffusion.model import denoise_one_step, linear_alphas_cumprod, make_unet  # noqa: E402
from mollify.evaluation.certify import certified_accuracy, certify, sigma_to_timestep  # noqa: E402
from mollify.evaluation.metrics import classification_metrics  # noqa: E402
from mollify.evaluation.predict import member_streams, predict_probs, predict_probs_ensemble  # noqa: E402
from mollify.grid import Network  # noqa: E402
from mollify.models import create_model  # noqa: E402
from mollify.training.loop import TrainSettings, train  # noqa: E402
from mollify.training.losses import LOSSES  # noqa: E402
from mollify.training.run import build_augmentation, build_recipe  # noqa: E402

# Measured dense bf16 matrix-product rates (TFLOP/s) of this workplace's cards, matched as a substring of
# the device name: an 8192^3 bf16 product on random data (H200: shared/reference/numbers.md; H100: the
# device tool's KINDS.md, 2026-11-13). The data-sheet peak (model_throughput.PEAK_BF16_TFLOPS) is reported beside it.
MEASURED_BF16_TFLOPS = {"H200": 790.0, "H100": 798.0}

# (network, image side, classes): the paper networks, at the resolution and class count of a dataset they
# are trained on; cheapest first, so that a tight time budget cuts the dearest rows
NETWORKS = [
    ("preact_resnet18", 32, 10),            # the overhead benchmarks' network
    ("resnet18", 32, 100),                  # Soft Augmentation, spatial smoothing (CIFAR-100)
    ("preact_resnet18_nfm", 32, 10),        # NFM's CIFAR-10 network
    ("preact_wide_resnet18_nfm", 32, 100),  # NFM's CIFAR-100 network
    ("preact_resnet50", 32, 100),           # mollification (CIFAR)
    ("wrn28_10", 32, 10),                   # uncertainty baselines
    ("preact_resnet50", 64, 200),           # mollification (TinyImageNet)
]
BIG = {"preact_wide_resnet18_nfm", "preact_resnet50", "wrn28_10"}  # half the steps: 120 instead of 240
TINY_NETWORKS = [("small_resnet", 32, 10)]

# method -> its recipe: conf/config.yaml's recipe of that name, or the recipe given here
METHODS: dict[str, str | dict[str, Any]] = {
    "plain": "baseline",
    "mollification": "trivaug_mollify",
    "nfm": "nfm",
    # conf/config.yaml's softaug, but soft crop on to the last epoch, so that the last epoch's loss is
    # comparable with the first's (it ends with one epoch of hard crops there)
    "soft_crop": {"augment": ["flip"], "softaug": {"sigma_crop": 12, "power": 2, "confidence_weight": "batch_mean",
                                                   "final_epochs_without": 0}},
    "diffaug": "diffaug",
    "augmix_jsd": {"augment": ["flip", "crop", "augmix"], "augmix_jsd": True},
    "mc_dropout": {"augment": ["flip", "crop"], "mc_dropout": 0.3},
    "smoothing": "smooth",
}
# the compiled rows (torch.compile costs tens of seconds per graph), in the order the budget cuts them last:
# the plain step of three networks, then the networks that MC dropout and smoothing change and the
# paper's step (mollification: the plain row's graph again), then TinyImageNet's network
COMPILED = [("preact_resnet18", 32, 10, "plain"), ("preact_resnet50", 32, 100, "plain"), ("wrn28_10", 32, 10, "plain"),
            ("preact_resnet18", 32, 10, "mollification"), ("preact_resnet18", 32, 10, "smoothing"),
            ("preact_resnet18", 32, 10, "mc_dropout"), ("preact_resnet50", 64, 200, "plain")]
PRECISION_TIMESTEPS = (0, 10, 50, 100, 250, 500, 750, 999)
COMPILE_ALLOWANCE_S = 60.0  # a compiled row's expected extra seconds (compiling one network) until one is measured
CLASSES_AT = {32: (10, 100), 64: (200,)}  # the datasets' class counts at each image side (grid.py's keys)
MEAN, STD = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)


def recipe_of(method: str) -> MethodConfig:
    spec = METHODS[method]
    if isinstance(spec, str):
        spec = yaml.safe_load((ROOT / "conf" / "config.yaml").read_text())["recipes"][spec]
    return MethodConfig.model_validate(spec)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def synthetic(n: int, size: int, classes: int, device: torch.device, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images (n, 3, size, size) and labels on `device`: a smooth random template per class
    (the same for every seed: the held-out images are of the training classes) plus pixel noise, so
    that a network learns them within a few hundred steps."""
    templates = torch.rand(classes, 3, 4, 4, generator=torch.Generator(device=device).manual_seed(0), device=device)
    templates = torch.nn.functional.interpolate(templates, size=(size, size), mode="bilinear", align_corners=False)
    g = torch.Generator(device=device).manual_seed(seed)
    labels = torch.randint(classes, (n,), generator=g, device=device)
    noise = torch.randn(n, 3, size, size, generator=g, device=device) * 0.15
    images = ((templates[labels] + noise).clamp(0, 1) * 255).round().to(torch.uint8)
    return images, labels


@contextmanager
def caught(entry: dict[str, Any]) -> Iterator[None]:
    """Run the block; on an exception write its name and message into `entry` (status "error")
    instead of raising, so that the next row runs."""
    try:
        yield
        entry.setdefault("status", "ok")
    except Exception as e:
        entry["status"] = "error"
        entry["error"] = f"{type(e).__name__}: {e}".strip()[:2000]
        entry["where"] = traceback.format_exc().strip().splitlines()[-3:]
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def peak_memory_gib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


class Check:
    """The run's shared state: device, sizes, the report and its file, the time budget."""

    def __init__(self, device: torch.device, tiny: bool, out: Path, step_times: Path, budget_s: float, batch: int):
        self.device, self.tiny, self.out, self.step_times_file = device, tiny, out, step_times
        self.budget_s, self.batch, self.started = budget_s, batch, time.perf_counter()
        self.unets: dict[int, Any] = {}
        self.row_seconds: dict[tuple[str, int], float] = {}  # (network, side) -> seconds of its plain eager row
        self.compile_s = COMPILE_ALLOWANCE_S  # the longest compilation measured so far, once one is
        self.compile_measured = False
        self.networks = TINY_NETWORKS if tiny else NETWORKS
        self.eval_network = self.networks[0]  # its plain eager model goes through the evaluation paths
        self.eval_model: torch.nn.Module | None = None
        # the work of each part: the check's, and the dry run's (seconds on a CPU)
        self.sizes = dict(epochs=4, steps_per_epoch=3, policy_repeats=1, precision_images=4, precision_t=(0, 500, 999),
                          eval_images=32, corruptions=("gaussian_noise", "jpeg_compression"), ensemble_step=150,
                          certify=(1, 4, 8)) if tiny else dict(
                          epochs=6, steps_per_epoch=40, policy_repeats=10, precision_images=256, precision_t=PRECISION_TIMESTEPS,
                          eval_images=2000, corruptions=STANDARD + EXTRA, ensemble_step=50, certify=(20, 100, 1000))
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        spec = peak_tflops(device)
        measured = next((v for k, v in MEASURED_BF16_TFLOPS.items() if k in name), None) if device.type == "cuda" else None
        self.peak = {"spec_tflops": spec, "measured_tflops": measured,
                     "spec_source": "vendor data sheet, dense bf16 (benchmarks/model_throughput.py)",
                     "measured_source": "8192^3 bf16 matrix product on this workplace's card "
                                        "(H200: shared/reference/numbers.md; H100: device tool KINDS.md)"}
        self.report: dict[str, Any] = {
            "device": {"name": name, "type": device.type, "torch": torch.__version__, "cuda": torch.version.cuda,
                       "count": torch.cuda.device_count() if device.type == "cuda" else 0,
                       "capability": list(torch.cuda.get_device_capability(device)) if device.type == "cuda" else None,
                       "memory_gib": torch.cuda.get_device_properties(device).total_memory / 2**30 if device.type == "cuda" else None},
            "peak_bf16": self.peak,
            "settings": {"tiny": tiny, "batch": batch, "budget_s": budget_s, "precision": "bf16 autocast" if device.type == "cuda" else "fp32",
                         "channels_last": True, "sizes": self.sizes, "half_steps": sorted(BIG), "methods": dict(METHODS),
                         "compiled_rows": [] if tiny else [f"{n}/{px}px {m}" for n, px, _, m in COMPILED]},
            "training": [], "diffaug_precision": {}, "evaluation": {}, "ddp": {},
        }

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def unet(self, size: int) -> Any:
        """The DDPM-CIFAR-10-size UNet at `size` px, or the demo UNet with --tiny; one per size, shared by
        the rows. Untrained: its speed does not depend on the weights (a trained one's precision errors may
        differ from these)."""
        if size not in self.unets:
            torch.manual_seed(0)
            self.unets[size] = make_unet("demo" if self.tiny else "ddpm_cifar10", size).to(self.device)
        return self.unets[size]

    def save(self) -> None:
        """Write the report (atomically: a run killed mid-write leaves the previous one)."""
        rows = self.report["training"]
        self.report["summary"] = {
            "rows": len(rows), "ok": sum(r["status"] == "ok" for r in rows),
            "failed": [f"{r['network']}/{r['image_size']}px {r['method']}{' compiled' if r['compiled'] else ''}: {r.get('error')}"
                       for r in rows if r["status"] == "error"],
            "not_falling": [f"{r['network']}/{r['image_size']}px {r['method']}{' compiled' if r['compiled'] else ''}"
                            for r in rows if r["status"] == "ok" and not r["loss_falling"]],
            "skipped": sum(r["status"].startswith("skipped") for r in rows),
            "seconds": round(self.elapsed(), 1),
        }
        atomic_json(self.out, self.report)


def atomic_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as f:
        json.dump(data, f, indent=1, default=str)
    os.replace(f.name, path)


def step_flops(model: torch.nn.Module, recipe, augment, normalize: Normalize, loss_fn, images: torch.Tensor,
               labels: torch.Tensor, device: torch.device) -> int:
    """FLOPs of one training step (the batch recipe's extra views, DiffAug's UNet pass included) by
    torch's FLOP counter, on the eager network; the gradients are dropped afterwards."""
    g = torch.Generator(device=device).manual_seed(1)
    with FlopCounterMode(display=False) as counter:
        x, y = recipe.prepare(images, labels, augment, normalize, g)
        with autocast(device, "auto"):
            logits, y = recipe.forward(model, x, y, g)
        recipe.loss(loss_fn, logits, y).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def policy_seconds(recipe, augment, normalize: Normalize, images: torch.Tensor, labels: torch.Tensor,
                   device: torch.device, repeats: int) -> tuple[float, float]:
    """Median seconds of the per-image augmentation alone, and of the whole input side of a step
    (augmentation, normalisation, batch recipe, extra views: AugMix's, DiffAug's UNet pass)."""
    g = torch.Generator(device=device).manual_seed(2)
    times: dict[str, list[float]] = {"augment": [], "prepare": []}
    for i in range(repeats + 1):
        for name, run in (("augment", lambda: augment(images, g)),
                          ("prepare", lambda: recipe.prepare(images, labels, augment, normalize, g))):
            sync(device)
            start = time.perf_counter()
            run()
            sync(device)
            if i:  # the first round warms up
                times[name].append(time.perf_counter() - start)
    return statistics.median(times["augment"]), statistics.median(times["prepare"])


def train_row(check: Check, network: str, size: int, classes: int, method: str, compiled: bool) -> dict[str, Any]:
    """Train one (network, method) for a few hundred steps through mollify's training loop; return its row."""
    dev, batch = check.device, check.batch
    row: dict[str, Any] = {"network": network, "image_size": size, "classes": classes, "method": method, "compiled": compiled}
    with caught(row):
        recipe_cfg = recipe_of(method)
        views = 1 + recipe_cfg.diffaug + 2 * recipe_cfg.augmix_jsd
        row["rows"] = batch * views
        epochs, steps_per_epoch = check.sizes["epochs"], check.sizes["steps_per_epoch"] // (2 if network in BIG else 1)
        row["steps"] = steps_per_epoch * epochs
        images, labels = synthetic(steps_per_epoch * batch, size, classes, dev, seed=0)
        normalize = Normalize(MEAN, STD, dev, channels_last=True)
        diffaug = NormalizedDiffAug(DiffAug(check.unet(size)), normalize) if recipe_cfg.diffaug else None
        recipe = build_recipe(recipe_cfg, classes, diffaug)
        augment = build_augmentation(recipe_cfg, TrainConfig())
        torch.manual_seed(0)
        model = create_model(network, recipe.output_classes, smoothing=recipe_cfg.smoothing,
                             mc_dropout=recipe_cfg.mc_dropout).to(dev, memory_format=torch.channels_last)
        loss_fn = LOSSES[recipe_cfg.loss]
        flops = step_flops(model, recipe, augment, normalize, loss_fn, images[:batch], labels[:batch], dev)
        augment_s, prepare_s = policy_seconds(recipe, augment, normalize, images[:batch], labels[:batch], dev,
                                              repeats=check.sizes["policy_repeats"])
        settings = TrainSettings(epochs=epochs, batch_size=batch, lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4,
                                 warmup_epochs=1, seed=0, compile=compiled)
        if compiled:  # each compiled row compiles afresh: no row runs into another's recompilation limit
            torch._dynamo.reset()
        reset_peak_memory(dev)
        started = time.perf_counter()
        history = train(model, images, labels, augment, normalize, recipe, loss_fn, settings, show_progress=False)
        sync(dev)
        row["seconds"] = round(time.perf_counter() - started, 2)
        losses = [h["train_loss"] for h in history]
        # the first epoch pays warm-up (and compilation): the rates are the later epochs' median
        images_per_s = statistics.median(h["images_per_s"] for h in history[1:])
        step_s = batch / images_per_s
        tflops = flops / step_s / 1e12
        row.update({
            "epoch_losses": [round(v, 4) for v in losses],
            "loss_finite": all(math.isfinite(v) for v in losses),
            # falling: the last epoch's mean loss below the first's (each the mean over its steps)
            "loss_falling": losses[-1] < losses[0],
            "images_per_s": round(images_per_s, 1), "step_s": step_s,
            "first_epoch_extra_s": round(steps_per_epoch * batch / history[0]["images_per_s"] - steps_per_epoch * step_s, 2),
            "gflop_per_step": round(flops / 1e9, 2), "tflops": round(tflops, 3),
            "fraction_of_spec_peak": tflops / check.peak["spec_tflops"] if check.peak["spec_tflops"] else None,
            "fraction_of_measured_peak": tflops / check.peak["measured_tflops"] if check.peak["measured_tflops"] else None,
            "peak_memory_gib": peak_memory_gib(dev),
            "augment_share": augment_s / step_s, "input_share": prepare_s / step_s,
        })
        if not row["loss_finite"]:
            raise FloatingPointError(f"loss not finite: {losses}")
        if not compiled and method == "plain":
            check.row_seconds[(network, size)] = row["seconds"]
        if compiled:
            extra = max(row["first_epoch_extra_s"], 0.0)
            check.compile_s = max(check.compile_s, extra) if check.compile_measured else extra
            check.compile_measured = True
        if (network, size, classes) == check.eval_network and method == "plain" and not compiled:
            check.eval_model = model
    return row


def diffaug_precision(check: Check) -> dict[str, Any]:
    """The one-step DiffAug estimate x0_hat under bf16 and fp16 autocast against fp32 (TF32 off), per t:
    the relative L2 error and the largest pixel error in [-1, 1] units, on the same images and noise."""
    dev, out = check.device, {"unet": "demo" if check.tiny else "ddpm_cifar10", "rows": []}
    with caught(out):
        size = check.networks[0][1]
        unet = check.unet(size)
        n = check.sizes["precision_images"]
        images, _ = synthetic(n, size, 10, dev, seed=3)
        x0 = images.float() / 127.5 - 1
        abar = linear_alphas_cumprod().to(dev)
        g = torch.Generator(device=dev).manual_seed(4)
        for t in check.sizes["precision_t"]:
            row: dict[str, Any] = {"t": t}
            with caught(row):
                tt = torch.full((n,), t, device=dev, dtype=torch.long)
                noise = torch.randn(x0.shape, generator=g, device=dev)
                tf32 = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
                torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
                try:
                    reference = denoise_one_step(unet, x0, tt, noise, abar)
                finally:
                    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32
                for name, dtype in (("bf16", torch.bfloat16), ("fp16", torch.float16)):
                    with torch.autocast(dev.type, dtype=dtype):
                        low = denoise_one_step(unet, x0, tt, noise, abar)
                    row[f"{name}_rel_l2"] = float((low - reference).norm() / reference.norm())
                    row[f"{name}_max_abs"] = float((low - reference).abs().max())
                    row[f"{name}_finite"] = bool(torch.isfinite(low).all())
            out["rows"].append(row)
    return out


def evaluation(check: Check) -> dict[str, Any]:
    """The plain eager model of the first network through the evaluation paths on held-out synthetic images."""
    dev, out = check.device, {}
    with caught(out):
        model = check.eval_model
        if model is None:
            raise RuntimeError("no model to evaluate: the plain eager row of the evaluation network failed")
        network, size, classes = check.eval_network
        n = check.sizes["eval_images"]
        images, labels = synthetic(n, size, classes, dev, seed=5)
        labels_cpu = labels.cpu()
        normalize = Normalize(MEAN, STD, dev, channels_last=True)
        out.update({"network": network, "images": n})

        def timed(name: str, fn: Callable[[], Any]) -> None:
            entry: dict[str, Any] = {}
            with caught(entry):
                start = time.perf_counter()
                entry.update(fn())
                sync(dev)
                entry["seconds"] = round(time.perf_counter() - start, 2)
            out[name] = entry

        def metrics(probs: torch.Tensor) -> dict[str, float]:
            m = classification_metrics(probs, labels_cpu)
            if not all(math.isfinite(float(v)) for v in m.values()):
                raise FloatingPointError(f"metrics not finite: {m}")
            return {k: round(float(v), 4) for k, v in m.items()}

        timed("clean", lambda: metrics(predict_probs(model, images, normalize, dev, batch_size=500)))

        def corrupted() -> dict[str, Any]:
            table = {}
            for name in check.sizes["corruptions"]:
                entry: dict[str, Any] = {}
                with caught(entry):
                    start = time.perf_counter()
                    x = corrupt(images, name, 3, seed=0, batch_size=500)
                    entry.update(metrics(predict_probs(model, x, normalize, dev, batch_size=500)))
                    entry["seconds"] = round(time.perf_counter() - start, 2)
                table[name] = entry
            out["corrupted_by_name"] = table
            if failed := [k for k, v in table.items() if v["status"] != "ok"]:
                raise RuntimeError(f"corruptions failed: {', '.join(failed)} (see corrupted_by_name)")
            return {"severity": 3}

        timed("corrupted", corrupted)
        diffaug = DiffAug(check.unet(size))
        members = ensemble_timesteps(check.sizes["ensemble_step"])
        timed("diffaug_ensemble", lambda: {"members": members, **metrics(predict_probs_ensemble(
            model, images, normalize, dev, diffaug, member_streams(0, members, dev), batch_size=500))})

        def certification() -> dict[str, Any]:
            sigma, (count, n0, draws) = 0.25, check.sizes["certify"]
            t = sigma_to_timestep(sigma, diffaug.alphas_cumprod.cpu())
            g = torch.Generator(device=dev).manual_seed(6)

            def classify(copies: torch.Tensor) -> torch.Tensor:
                probs = predict_probs(model, copies, normalize, dev, batch_size=1000, transform=lambda z: diffaug(z, g, t))
                return probs.argmax(dim=1)

            predictions = certify(classify, images[:count], classes, sigma, n0, draws, 0.001, 1000)
            radii = [0.0, 0.25, 0.5]
            return {"images": count, "sigma": sigma, "t": t, "n0": n0, "n": draws,
                    "certified_accuracy": dict(zip(map(str, radii), certified_accuracy(predictions, labels_cpu[:count], radii)))}

        timed("certification", certification)
        out["failed"] = [k for k in ("clean", "corrupted", "diffaug_ensemble", "certification") if out[k]["status"] != "ok"]
        if out["failed"]:
            raise RuntimeError(f"evaluation paths failed: {', '.join(out['failed'])}")
    return out


def ddp(check: Check, mode: str) -> dict[str, Any]:
    """2-process DDP of the plain evaluation network through torchrun, where a second device exists
    (or on CPU with gloo, `--ddp on`)."""
    out: dict[str, Any] = {}
    gpus = torch.cuda.device_count() if check.device.type == "cuda" else 0
    if mode == "off" or (mode == "auto" and gpus < 2):
        out["status"] = "skipped: " + ("--ddp off" if mode == "off" else f"{gpus or 'no'} CUDA device{'s' * (gpus != 1)}: 2-process DDP needs two")
        return out
    with caught(out):
        with tempfile.TemporaryDirectory() as tmp:
            result_file = Path(tmp) / "ddp.json"
            command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                       str(Path(__file__).resolve()), "--ddp-worker", str(result_file), "--device", check.device.type]
            if check.tiny:
                command.append("--tiny")
            start = time.perf_counter()
            done = subprocess.run(command, capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
            out["seconds"] = round(time.perf_counter() - start, 1)
            if done.returncode != 0:
                raise RuntimeError(f"torchrun exited {done.returncode}: {(done.stdout + done.stderr)[-1500:]}")
            out.update(json.loads(result_file.read_text()))
        if not (out["loss_finite"] and out["loss_falling"]):
            raise FloatingPointError(f"DDP losses not finite or not falling: {out['epoch_losses']}")
    return out


def ddp_worker(result_file: Path, device_type: str, tiny: bool) -> None:
    """One torchrun rank: train the evaluation network's plain recipe on 2 x its share of each batch."""
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device_type == "cuda":
        torch.cuda.set_device(local)
    dev = torch.device(device_type, local) if device_type == "cuda" else torch.device("cpu")
    network, size, classes = (TINY_NETWORKS if tiny else NETWORKS)[0]
    batch, steps_per_epoch, epochs = (16, 3, 4) if tiny else (256, 20, 5)
    images, labels = synthetic(steps_per_epoch * batch, size, classes, dev, seed=0)  # the same on both ranks
    recipe_cfg = recipe_of("plain")
    recipe = build_recipe(recipe_cfg, classes)
    torch.manual_seed(0)
    model = create_model(network, classes).to(dev, memory_format=torch.channels_last)
    settings = TrainSettings(epochs=epochs, batch_size=batch, lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4,
                             warmup_epochs=1, seed=0)
    history = train(model, images, labels, build_augmentation(recipe_cfg, TrainConfig()), Normalize(MEAN, STD, dev, True),
                    recipe, LOSSES["ce"], settings, show_progress=False)
    if int(os.environ.get("RANK", "0")) == 0:
        losses = [h["train_loss"] for h in history]
        atomic_json(result_file, {
            "network": network, "world_size": int(os.environ["WORLD_SIZE"]), "global_batch": batch,
            "steps": steps_per_epoch * epochs, "epoch_losses": [round(v, 4) for v in losses],
            "loss_finite": all(math.isfinite(v) for v in losses), "loss_falling": losses[-1] < losses[0],
            "images_per_s": round(statistics.median(h["images_per_s"] for h in history[1:]), 1),
        })
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def step_times(check: Check) -> dict[str, dict[str, float]]:
    """Seconds per training step by grid.Network key (`stages/grid.py plan --step-times`), from the
    eager rows: a key's time is the slowest method with its rows (the step includes the input side,
    DiffAug's UNet pass too), written for every class count of a dataset at that image side."""
    label = f"cuda:{check.report['device']['name']}" if check.device.type == "cuda" else "cpu"
    seconds: dict[str, float] = {}
    for row in check.report["training"]:
        if row["status"] == "ok" and not row["compiled"]:
            for classes in CLASSES_AT.get(row["image_size"], (row["classes"],)):
                key = Network(row["network"], row["image_size"], classes, row["rows"]).key
                seconds[key] = max(seconds.get(key, 0.0), row["step_s"])
    stored = json.loads(check.step_times_file.read_text()) if check.step_times_file.is_file() else {}
    stored.setdefault(label, {}).update(seconds)
    return stored


def imported_distributions() -> dict[str, str]:
    """The distributions (name: version) whose top-level modules this process imported."""
    from importlib.metadata import packages_distributions, version

    owners = packages_distributions()
    names = {dist for module in list(sys.modules) if "." not in module for dist in owners.get(module, ())}
    versions = {}
    for name in sorted(names):
        try:
            versions[normalized(name)] = version(name)
        except Exception:  # metadata without a version
            versions[normalized(name)] = "?"
    return versions


def print_table(check: Check) -> None:
    """The rows as a table (the device tool's reply carries the end of the output)."""
    print(f"\n{'network':26s} {'px':>3s} {'method':13s} {'mode':7s} {'status':7s} {'img/s':>8s} {'TFLOP/s':>8s} "
          f"{'%spec':>6s} {'%meas':>6s} {'GiB':>5s} {'input':>6s} losses (first -> last epoch)")
    for r in check.report["training"]:
        if r["status"] != "ok":
            print(f"{r['network']:26s} {r['image_size']:3d} {r['method']:13s} {'compile' if r['compiled'] else 'eager':7s} "
                  f"{r['status'][:40]} {r.get('error', '')[:120]}")
            continue
        pct = lambda v: f"{100 * v:5.1f}%" if v is not None else "   n/a"  # noqa: E731
        print(f"{r['network']:26s} {r['image_size']:3d} {r['method']:13s} {'compile' if r['compiled'] else 'eager':7s} "
              f"{'ok':7s} {r['images_per_s']:8.0f} {r['tflops']:8.2f} {pct(r['fraction_of_spec_peak'])} "
              f"{pct(r['fraction_of_measured_peak'])} {r['peak_memory_gib'] or 0:5.1f} {pct(r['input_share'])} "
              f"{r['epoch_losses'][0]:.3f} -> {r['epoch_losses'][-1]:.3f}{'' if r['loss_falling'] else '  NOT FALLING'}")
    s = check.report["summary"]
    print(f"\n{s['ok']}/{s['rows']} rows ok, {s['skipped']} skipped, failed: {len(s['failed'])}, "
          f"not falling: {len(s['not_falling'])}; evaluation: {check.report['evaluation'].get('status')}; "
          f"DDP: {check.report['ddp'].get('status')}; DiffAug precision: {check.report['diffaug_precision'].get('status')}; "
          f"{s['seconds']:.0f} s; imports outside the image: {check.report.get('imports_outside_image')}")


def main(
    out: Path = typer.Option(Path("gpu_check.json"), help="the JSON report"),
    step_times_out: Path = typer.Option(None, "--step-times", help="step times for `stages/grid.py plan --step-times` "
                                        "(merged into the file if it exists; default: step_times.json beside --out)"),
    device: str = typer.Option("cuda", help="cuda (the check) or cpu (the dry run, with --tiny)"),
    tiny: bool = typer.Option(False, help="the dry run: a tiny network, the demo UNet, a few steps, no compiled rows"),
    budget_s: float = typer.Option(420.0, help="start no training row that would end after this many seconds "
                                   "(reported as skipped): the whole run stays within 8 minutes"),
    batch: int = typer.Option(None, help="images per step (default 128, the paper recipes'; 8 with --tiny)"),
    ddp_mode: str = typer.Option("auto", "--ddp", help="auto: 2-process DDP where two CUDA devices exist; on; off"),
    network: list[str] = typer.Option([], help="train only these networks (a re-run of failed rows; default: all)"),
    method: list[str] = typer.Option([], help="train only these methods (default: all)"),
    compiled_rows: bool = typer.Option(True, "--compiled/--no-compiled", help="the compiled rows too"),
    ddp_worker_file: Path = typer.Option(None, "--ddp-worker", hidden=True),
) -> None:
    """Train every paper network x batch-level method briefly on the device and write the report."""
    if ddp_worker_file is not None:
        ddp_worker(ddp_worker_file, device, tiny)
        return
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        sys.exit("gpu_check: no CUDA device here; for the dry run use --device cpu --tiny")
    if dev.type == "cpu":  # the dry run's small tensors gain nothing from more threads, and a shared machine loses much
        torch.set_num_threads(1)
    check = Check(dev, tiny, out, step_times_out or out.with_name("step_times.json"), budget_s, batch or (8 if tiny else 128))
    print(f"gpu_check on {check.report['device']['name']} (torch {torch.__version__}), batch {check.batch}, "
          f"budget {budget_s:.0f} s, report {out}", flush=True)
    check.report["diffaug_precision"] = diffaug_precision(check)
    check.save()
    if unknown := [m for m in method if m not in METHODS]:
        sys.exit(f"gpu_check: unknown method {', '.join(unknown)}; choices: {', '.join(METHODS)}")
    chosen = lambda net, m: (not network or net in network) and (not method or m in method)  # noqa: E731
    eager = [(net, size, classes, m, False) for net, size, classes in check.networks for m in METHODS if chosen(net, m)]
    compiled = [(net, size, classes, m, True) for net, size, classes, m in COMPILED if chosen(net, m)] if compiled_rows and not tiny else []
    # the evaluation network's plain row first (its model goes through the evaluation paths), then those paths
    for spec in [*eager[:1], "evaluation", "ddp", *eager[1:], *compiled]:
        if spec == "evaluation":
            evaluated = chosen(check.eval_network[0], "plain")
            check.report["evaluation"] = evaluation(check) if evaluated else {
                "status": f"skipped: the plain row of {check.eval_network[0]} was not chosen"}
        elif spec == "ddp":
            check.report["ddp"] = ddp(check, ddp_mode)
        else:
            net, size, classes, method, is_compiled = spec
            # a row starts only if its like (the network's plain eager row, + compilation) would end within the budget
            estimate = check.row_seconds.get((net, size), 0.0) + (check.compile_s if is_compiled else 0.0)
            if check.elapsed() + estimate > budget_s:
                check.report["training"].append({"network": net, "image_size": size, "classes": classes, "method": method,
                                                 "compiled": is_compiled, "status": f"skipped: time budget ({budget_s:.0f} s)"})
            else:
                row = train_row(check, *spec)
                check.report["training"].append(row)
                print(f"[{check.elapsed():6.1f} s] {net}/{size}px {method}{' compiled' if is_compiled else ''}: "
                      f"{row['status']} {row.get('error', '')[:200]}", flush=True)
        check.save()
    check.report["step_times"] = {"file": str(check.step_times_file)}
    with caught(check.report["step_times"]):
        atomic_json(check.step_times_file, step_times(check))
    with caught(check.report.setdefault("imports", {})):
        check.report["packages"] = imported_distributions()
        allowed = IMAGE_PACKAGES | wheel_names() | NOT_NEEDED_THERE | {"mollify"}
        check.report["imports_outside_image"] = sorted(set(check.report["packages"]) - allowed)
    check.save()
    print_table(check)


if __name__ == "__main__":
    typer.run(main)
