"""The training loop: device-resident data, batched per-sample augmentation, SGD + cosine,
a checkpoint every epoch and exact resume.

Randomness is drawn from a generator seeded per epoch (and torch's global generator, which
torchvision's MixUp / CutMix and dropout use, is seeded the same way), so a run resumed from the checkpoint of
epoch k repeats epochs k+1.. exactly as an uninterrupted run would on CPU. Under torchrun
(mollify.training.distributed) every rank draws the same batch order and trains on its slice of each
batch, with its own augmentation draws.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from mollify.training import distributed
from mollify.augment import Augmentation, BatchRecipe
from mollify.device import Normalize, autocast, stream_seed
from mollify.training.divergence import DivergenceGuard, classifier_loss_bound
from mollify.errors import MollifyError
from mollify.io import load_checkpoint, save_torch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainSettings:
    epochs: int
    batch_size: int
    lr: float
    momentum: float
    nesterov: bool
    weight_decay: float
    warmup_epochs: int
    seed: int
    precision: str = "auto"
    schedule: str = "cosine"
    milestones: tuple[int, ...] = ()
    lr_decay: float = 0.1
    schedule_unit: str = "step"  # step | epoch (the mollification reference's per-epoch CosineAnnealingLR)
    drop_last: bool = True  # False: the last partial batch is trained on too (the mollification reference)
    compile: bool = False  # torch.compile the forward (and so the backward) pass; weights stay the model's own


def learning_rate(step: int, total_steps: int, warmup_steps: int, base_lr: float, schedule: str = "cosine",
                  milestone_steps: tuple[int, ...] = (), decay: float = 0.1) -> float:
    """Linear warm-up, then per step either cosine decay from `base_lr` to 0 over the remaining
    steps, or `base_lr` x decay^(number of milestones passed) (the step schedule). A "step" is
    one of the schedule's ticks: an optimiser step, or an epoch (`schedule_unit: epoch`, e.g.
    cosine with T_max = epochs stepped once per epoch, as torch's CosineAnnealingLR)."""
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    if schedule == "step":
        return base_lr * decay ** sum(step >= m for m in milestone_steps)
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return base_lr * 0.5 * (1 + math.cos(math.pi * progress))


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.3f}  acc {task.fields[acc]:.3f}  {task.fields[ips]:.0f} img/s"),
        TimeElapsedColumn(), TimeRemainingColumn(), disable=not enabled,
    )


def train(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    augment: Augmentation,
    normalize: Normalize,
    recipe: BatchRecipe,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    settings: TrainSettings,
    checkpoint: Path | None = None,
    fingerprint: dict[str, str] | None = None,
    show_progress: bool = True,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    divergence_hint: str = "Lower the learning rate.",
) -> list[dict[str, Any]]:
    """Train `model` in place on uint8 `images` (already on the model's device): per-image
    `augment`, `normalize`, then the batch `recipe` (labels -> soft targets and the forward pass:
    soft crop, mixup/cutmix, mollification, NFM) and `loss_fn` on the soft targets. Returns the
    per-epoch log; `on_epoch` gets each entry (those of a resumed checkpoint first), and without
    `show_progress` (no terminal) each epoch is logged as a line. With `checkpoint`, state is saved
    after each epoch and a matching checkpoint (same `fingerprint` parts) is resumed from. A loss
    that is not finite or above `classifier_loss_bound` raises `Diverged` before anything is saved.
    Under torchrun, each rank trains on its 1/world of every batch of `batch_size` images (DDP
    averages the gradients) and rank 0 alone saves and reports."""
    device = images.device
    n = len(images)
    batch = min(settings.batch_size, n)
    distributed.init(device)
    world, rank, main = distributed.world_size(), distributed.rank(), distributed.is_main()
    if batch % world:
        raise MollifyError(f"train.batch_size {batch} does not split evenly over {world} processes; "
                           f"set a multiple of {world} (it is the global batch, as on one device)")
    # drop_last: the last partial batch is dropped (stable BatchNorm statistics); else it is trained on
    steps_per_epoch = n // batch if settings.drop_last else -(-n // batch)
    if not settings.drop_last and n % batch == 1:
        raise MollifyError(f"train.drop_last=false with {n} images in batches of {batch} leaves a last batch of one image, "
                           "on which BatchNorm cannot train; set train.drop_last=true or another train.batch_size")
    total_steps = steps_per_epoch * settings.epochs
    network = torch.compile(model) if settings.compile else model  # shares the parameters: checkpoints stay plain
    per_step = settings.schedule_unit == "step"
    ticks = steps_per_epoch if per_step else 1  # schedule ticks per epoch
    optimizer = torch.optim.SGD(
        model.parameters(), lr=settings.lr, momentum=settings.momentum,
        nesterov=settings.nesterov and settings.momentum > 0, weight_decay=settings.weight_decay,
    )
    history: list[dict[str, Any]] = []
    start_epoch = 0
    if (state := load_checkpoint(checkpoint, fingerprint or {})) is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        history, start_epoch = state["history"], state["epoch"]
        log.info("resumed from epoch %d of %s", start_epoch, checkpoint)
    on_epoch = on_epoch if main else None
    show_progress = show_progress and main
    for entry in history if on_epoch else ():
        on_epoch(entry)
    step_module = distributed.wrap(network, recipe.forward)

    def lr_at(step: int) -> float:
        """The learning rate of optimiser step `step` (the schedule ticks per step or per epoch)."""
        return learning_rate(step if per_step else step // steps_per_epoch, ticks * settings.epochs,
                             settings.warmup_epochs * ticks, settings.lr, settings.schedule,
                             tuple(m * ticks for m in settings.milestones), settings.lr_decay)

    guard = DivergenceGuard(classifier_loss_bound(recipe.output_classes, 2 if recipe.diffaug is not None else 1), device)

    with _progress(show_progress) as progress:
        task = progress.add_task("train", total=total_steps, completed=start_epoch * steps_per_epoch, loss=math.nan, acc=math.nan, ips=0.0)
        for epoch in range(start_epoch, settings.epochs):
            seed = stream_seed(settings.seed, epoch)
            g = torch.Generator(device=device).manual_seed(seed)
            torch.manual_seed(seed)
            recipe.start_epoch(epoch, settings.epochs)
            model.train()
            order = torch.randperm(n, generator=g, device=device)  # the same on every rank
            if rank:  # per-sample randomness of its own on each other rank
                g.manual_seed(stream_seed(seed, rank))
                torch.manual_seed(stream_seed(seed, rank))
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), device=device)
            seen = torch.zeros((), device=device)
            started = time.perf_counter()
            for i in range(steps_per_epoch):
                step = epoch * steps_per_epoch + i
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(step)
                idx = order[i * batch : (i + 1) * batch].tensor_split(world)[rank]
                y = labels[idx]
                x, soft_targets = recipe.prepare(images[idx], y, augment, normalize, g)
                with autocast(device, settings.precision):
                    logits, soft_targets = step_module(x, soft_targets, g)
                loss = recipe.loss(loss_fn, logits, soft_targets)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                loss_sum += loss.detach()
                guard.update(step, loss)
                correct += (logits[: len(y), : recipe.num_classes].argmax(1) == y).sum()  # clean rows
                seen += len(y)
                if i % 20 == 19 or i == steps_per_epoch - 1:  # a host sync every 20 steps, not every step
                    guard.check(lr_at, divergence_hint)  # before the epoch's checkpoint, too
                    progress.update(task, completed=step + 1, loss=float(loss_sum) / (i + 1), acc=float(correct) / float(seen),
                                    ips=float(seen) * world / (time.perf_counter() - started),
                                    description=f"epoch {epoch + 1}/{settings.epochs}")
            loss_sum, correct, seen = (distributed.mean(t) for t in (loss_sum, correct, seen))  # over the ranks
            seconds = time.perf_counter() - started
            history.append({
                "epoch": epoch + 1,
                "train_loss": float(loss_sum) / steps_per_epoch,
                "train_acc": float(correct) / float(seen),
                "lr": optimizer.param_groups[0]["lr"],
                "images_per_s": float(seen) * world / seconds,
            })
            if not show_progress and main:
                log.info("epoch %d/%d: loss %.4f, acc %.4f, lr %.4g, %.0f images/s", epoch + 1, settings.epochs,
                         *(history[-1][k] for k in ("train_loss", "train_acc", "lr", "images_per_s")))
            if on_epoch:
                on_epoch(history[-1])
            if checkpoint is not None and main:
                save_torch(checkpoint, {
                    "model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch + 1,
                    "history": history, "fingerprint": fingerprint, "settings": asdict(settings),
                })
    return history

