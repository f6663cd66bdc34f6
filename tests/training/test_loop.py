"""Learning-rate schedules, determinism, and resume from a checkpoint (only the remaining epochs, refused on another fingerprint)."""

import math
import re
from dataclasses import asdict

import pytest
import torch
import yaml
from torch.optim.optimizer import register_optimizer_step_pre_hook

from mollify.training.loop import TrainSettings, learning_rate, train
from mollify import paths
from mollify.augment import BatchRecipe
from mollify.device import Normalize
from mollify.errors import MollifyError
from mollify.training.losses import soft_cross_entropy
from mollify.config import parse_params
from mollify.data import prepare_dataset
from mollify.training.run import train_method
from tests.conftest import DefaultDeviceWatch, tiny_params

_NORMALIZE = Normalize((0.5,) * 3, (0.25,) * 3, torch.device("cpu"))
_IMAGES = torch.randint(0, 256, (10, 3, 4, 4), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))


def _linear_model() -> torch.nn.Module:
    """The tests' classifier of 4x4 images, initialised from seed 0."""
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 10))


def test_learning_rate_warmup_then_cosine():
    assert learning_rate(0, 100, 10, 0.1) == pytest.approx(0.01)
    assert learning_rate(9, 100, 10, 0.1) == pytest.approx(0.1)
    assert learning_rate(10, 100, 10, 0.1) == pytest.approx(0.1)
    assert learning_rate(55, 100, 10, 0.1) == pytest.approx(0.05)
    assert learning_rate(99, 100, 0, 0.1) == pytest.approx(0.1 * 0.5 * (1 + math.cos(0.99 * math.pi)))


def _run_schedule(schedule_unit: str, drop_last: bool, epochs: int = 4) -> tuple[list[int], list[float]]:
    """Batch sizes and learning rates of every optimiser step of a run on 10 images in batches of 4."""
    model = _linear_model()
    sizes, lrs = [], []
    model.register_forward_pre_hook(lambda m, args: sizes.append(len(args[0])))
    hook = register_optimizer_step_pre_hook(lambda opt, *_: lrs.append(opt.param_groups[0]["lr"]))
    settings = TrainSettings(epochs=epochs, batch_size=4, lr=0.1, momentum=0.9, nesterov=False, weight_decay=5e-4,
                             warmup_epochs=0, seed=0, schedule_unit=schedule_unit, drop_last=drop_last)
    images = torch.randint(0, 256, (10, 3, 4, 4), dtype=torch.uint8)
    try:
        history = train(model, images, torch.arange(10), lambda x, g: x, _NORMALIZE,
                        BatchRecipe(10), soft_cross_entropy, settings, show_progress=False)
    finally:
        hook.remove()
    assert [row["lr"] for row in history] == lrs[len(lrs) // epochs - 1 :: len(lrs) // epochs]
    return sizes, lrs


def test_per_epoch_cosine_is_torchs_cosine_annealing_lr_stepped_each_epoch():
    sizes, lrs = _run_schedule("epoch", drop_last=False)
    assert sizes == [4, 4, 2] * 4  # the last partial batch kept: 3 steps per epoch
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=4)  # the reference's, stepped per epoch
    expected = []
    for _ in range(4):
        expected += [optimizer.param_groups[0]["lr"]] * 3
        optimizer.step()
        scheduler.step()
    assert lrs == pytest.approx(expected, rel=1e-12)
    assert lrs[::3] == pytest.approx([0.1, 0.05 * (1 + math.cos(math.pi / 4)), 0.05, 0.05 * (1 - math.cos(math.pi / 4))])


@pytest.mark.parametrize(("drop_last", "sizes_per_epoch"), [(True, [4, 4]), (False, [4, 4, 2])])
def test_per_step_cosine_over_the_steps_with_and_without_the_last_partial_batch(drop_last, sizes_per_epoch):
    sizes, lrs = _run_schedule("step", drop_last)
    steps = len(sizes_per_epoch) * 4
    assert sizes == sizes_per_epoch * 4
    assert lrs == pytest.approx([0.05 * (1 + math.cos(math.pi * i / steps)) for i in range(steps)], rel=1e-12)


def test_a_last_batch_of_one_image_is_refused_with_a_message():
    settings = TrainSettings(epochs=1, batch_size=4, lr=0.1, momentum=0, nesterov=False, weight_decay=0, warmup_epochs=0,
                             seed=0, drop_last=False)
    model = _linear_model()
    with pytest.raises(MollifyError) as refused:
        train(model, torch.zeros(9, 3, 4, 4, dtype=torch.uint8), torch.zeros(9, dtype=torch.long), lambda x, g: x,
              _NORMALIZE, BatchRecipe(10), soft_cross_entropy, settings,
              show_progress=False)
    assert str(refused.value) == ("train.drop_last=false with 9 images in batches of 4 leaves a last batch of one image, "
                                  "on which BatchNorm cannot train; set train.drop_last=true or another train.batch_size")


def _weights(method="baseline"):
    return torch.load(paths.model_file("demo", method), weights_only=True)["state_dict"]


def _prepare(workdir, epochs):
    params = tiny_params(**{"data.demo": {"train_size": 640, "test_size": 32}, "train.epochs": epochs, "train.batch_size": 64})
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    cfg = parse_params(params)
    prepare_dataset("demo", paths.clean_dir("demo"), download_dir=workdir, demo_train_size=640, demo_test_size=32)
    return cfg


def test_checkpoint_of_other_settings_is_not_resumed(workdir):
    cfg = _prepare(workdir, 1)
    train_method(cfg, "demo", "baseline", show_progress=False)
    first = _weights()
    cfg2 = cfg.model_copy(update={"train": cfg.train.model_copy(update={"epochs": 2})})
    history = train_method(cfg2, "demo", "baseline", show_progress=False)
    assert [h["epoch"] for h in history] == [1, 2]  # from scratch: the 1-epoch checkpoint is another run
    assert not all(torch.equal(first[k], v) for k, v in _weights().items())


def test_same_seed_same_weights(workdir):
    cfg = _prepare(workdir, 1)
    train_method(cfg, "demo", "baseline", show_progress=False)
    first = _weights()
    paths.checkpoint_file("demo", "baseline").unlink()
    train_method(cfg, "demo", "baseline", show_progress=False)
    assert all(torch.equal(first[k], v) for k, v in _weights().items())


def _cxx_compiler() -> str | None:
    """The C++ compiler torch.compile's CPU backend (Inductor) builds its kernels with."""
    from torch._inductor import cpp_builder

    try:
        return cpp_builder.get_cpp_compiler()
    except Exception:  # Inductor raises when it finds none
        return None


@pytest.mark.skipif(_cxx_compiler() is None, reason="torch.compile on CPU needs a C++ compiler (none found)")
def test_compiled_training_trains_like_eager():
    """train.compile: the compiled network trains on CPU (graphs compiled) to the eager run's weights,
    up to the float reassociation a fused kernel may do."""
    import torch._dynamo

    def run(compile: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                                    torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 10))
        initial = model[5].weight.detach().clone()
        settings = TrainSettings(epochs=2, batch_size=8, lr=0.05, momentum=0.9, nesterov=False, weight_decay=5e-4,
                                 warmup_epochs=0, seed=0, compile=compile)
        images = torch.randint(0, 256, (32, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
        train(model, images, torch.arange(32) % 10, lambda x, g: x, _NORMALIZE,
              BatchRecipe(10), soft_cross_entropy, settings, show_progress=False)
        return initial, model.state_dict()

    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    (initial, eager), (_, compiled) = run(False), run(True)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1
    assert list(compiled) == list(eager)  # plain keys: the checkpoint of a compiled run loads anywhere
    assert (eager["5.weight"] - initial).abs().max() > 1e-3  # it did train
    for key in eager:
        assert torch.allclose(compiled[key].float(), eager[key].float(), atol=1e-4, rtol=1e-4), key


@pytest.mark.parametrize(("warmup", "expected"), [
    (0, {0: 0.1, 29: 0.1, 30: 0.02, 59: 0.02, 60: 0.004, 99: 0.004}),
    (10, {0: 0.01, 4: 0.05, 9: 0.1, 10: 0.1, 29: 0.1, 30: 0.02, 60: 0.004}),  # warm-up, then the same milestones
])
def test_step_schedule_decays_at_each_milestone_step(warmup, expected):
    for step, lr in expected.items():
        assert learning_rate(step, 100, warmup, 0.1, "step", (30, 60), 0.2) == pytest.approx(lr, rel=1e-12), step


def test_step_schedule_decays_tenfold_at_a_milestone_by_default():
    assert learning_rate(29, 100, 0, 0.1, "step", (30,)) == 0.1
    assert learning_rate(30, 100, 0, 0.1, "step", (30,)) == pytest.approx(0.01, rel=1e-12)


class _Stop(Exception):
    pass


def _tiny_run(checkpoint, fingerprint, epochs=3, stop_after=None, schedule="cosine", milestones=()):
    """A run of `epochs` on 10 images in batches of 4 (2 steps an epoch); with `stop_after` it is
    killed at the end of epoch stop_after + 1, before that epoch's checkpoint (an exception from the
    epoch callback). Returns the weights, the learning rate of every optimiser step this call made
    and the epochs of the log entries it was given."""
    model = _linear_model()
    lrs = []
    hook = register_optimizer_step_pre_hook(lambda opt, *_: lrs.append(opt.param_groups[0]["lr"]))
    settings = TrainSettings(epochs=epochs, batch_size=4, lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4,
                             warmup_epochs=1, seed=0, schedule=schedule, milestones=milestones, lr_decay=0.5)
    epochs_seen = []

    def on_epoch(entry):
        epochs_seen.append(entry["epoch"])
        if stop_after is not None and entry["epoch"] == stop_after + 1:
            raise _Stop  # killed during epoch stop_after + 1: the checkpoint of epoch stop_after stays

    try:
        train(model, _IMAGES, torch.arange(10), lambda x, g: x, _NORMALIZE,
              BatchRecipe(10), soft_cross_entropy, settings, checkpoint=checkpoint, fingerprint=fingerprint,
              show_progress=False, on_epoch=on_epoch)
    except _Stop:
        pass
    finally:
        hook.remove()
    return model.state_dict(), lrs, epochs_seen


def test_step_schedule_in_epochs_through_the_loop():
    # warm-up epoch 0 (lr 0.05, 0.1), then 0.1 until the milestone at epoch 2, then 0.05, 0.025 after epoch 3
    _, lrs, _ = _tiny_run(None, None, epochs=4, schedule="step", milestones=(2, 3))
    assert lrs == pytest.approx([0.05, 0.1, 0.1, 0.1, 0.05, 0.05, 0.025, 0.025])


def test_resumed_run_performs_only_the_remaining_epochs_from_the_saved_state(tmp_path, caplog):
    uninterrupted, all_lrs, _ = _tiny_run(None, None)
    assert len(all_lrs) == 6
    checkpoint = tmp_path / "run.pt"
    _, first_lrs, _ = _tiny_run(checkpoint, {"train": "a"}, stop_after=1)
    assert len(first_lrs) == 4 and torch.load(checkpoint, weights_only=True)["epoch"] == 1
    with caplog.at_level("INFO", logger="mollify.training.loop"):
        resumed, lrs, seen = _tiny_run(checkpoint, {"train": "a"})
    assert f"resumed from epoch 1 of {checkpoint}" in caplog.messages
    assert lrs == all_lrs[2:]  # epochs 2 and 3 only, on the schedule of the whole run
    assert seen == [1, 2, 3]  # the saved epoch's log entry first, then the two it trained
    for key, value in uninterrupted.items():
        assert torch.equal(resumed[key], value), key


def test_a_checkpoint_of_another_fingerprint_is_refused_with_a_message(tmp_path, caplog):
    checkpoint = tmp_path / "run.pt"
    _tiny_run(checkpoint, {"train": "a", "data": "x"}, stop_after=1)
    with caplog.at_level("WARNING", logger="mollify.io"):
        _, lrs, seen = _tiny_run(checkpoint, {"train": "b", "data": "x"})
    assert f"ignoring checkpoint {checkpoint}: made with other train; starting from scratch" in caplog.text
    assert len(lrs) == 6 and seen == [1, 2, 3]  # every epoch trained again


def test_training_progress_shows_epoch_steps_loss_accuracy_and_throughput():
    import io

    from rich.console import Console

    from mollify.training.loop import _progress

    progress = _progress(True)
    progress.add_task("train", total=10, completed=3, loss=1.23456, acc=0.5, ips=1234.4)
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(progress.make_tasks_table(progress.tasks))
    line = console.export_text().strip()
    assert line.startswith("train ━") and " 3/10 loss 1.235  acc 0.500  1234 img/s 0:00:00 -:--:--" in line, line
    assert not progress.disable and _progress(False).disable


def _fit(settings: TrainSettings, recipe: BatchRecipe | None = None, labels: torch.Tensor | None = None, **kwargs):
    """`train` of `_linear_model` on the 10 random 4x4 `_IMAGES` (labels 0..9 unless given) with `settings`;
    returns the model."""
    model = _linear_model()
    train(model, _IMAGES, torch.arange(10) if labels is None else labels, lambda x, g: x, _NORMALIZE,
          recipe or BatchRecipe(10), soft_cross_entropy, settings, **kwargs)
    return model


_SETTINGS = TrainSettings(epochs=2, batch_size=4, lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4,
                          warmup_epochs=0, seed=0)


@pytest.mark.parametrize(("nesterov", "momentum", "expected"), [(True, 0.9, True), (False, 0.9, False), (True, 0.0, False)])
def test_the_optimiser_is_sgd_with_the_settings_momentum_weight_decay_and_nesterov_only_with_momentum(
        tmp_path, nesterov, momentum, expected):
    settings = TrainSettings(**{**asdict(_SETTINGS), "nesterov": nesterov, "momentum": momentum, "epochs": 1})
    _fit(settings, checkpoint=tmp_path / "run.pt", fingerprint={"train": "a"}, show_progress=False)
    state = torch.load(tmp_path / "run.pt", weights_only=True)
    assert state["settings"] == asdict(settings)  # what made the checkpoint, for whoever inspects it
    group = state["optimizer"]["param_groups"][0]
    assert (group["momentum"], group["nesterov"], group["weight_decay"], group["dampening"]) == (momentum, expected, 5e-4, 0)


def test_the_progress_bar_ends_at_the_last_epoch_with_every_step_and_nothing_is_logged(console, caplog):
    with caplog.at_level("INFO", logger="mollify.training.loop"):
        _fit(_SETTINGS)
    line = console.export_text()
    assert line.startswith("epoch 2/2 ━") and " 4/4 loss " in line, line  # 2 epochs of 2 steps
    assert not caplog.messages  # the bar replaces the per-epoch lines


def test_without_progress_each_epoch_is_a_log_line_and_nothing_is_drawn(console, caplog):
    with caplog.at_level("INFO", logger="mollify.training.loop"):
        _fit(_SETTINGS, show_progress=False)
    assert console.export_text() == ""
    assert [m.split(":")[0] for m in caplog.messages] == ["epoch 1/2", "epoch 2/2"]
    assert re.fullmatch(r"epoch 2/2: loss \d\.\d{4}, acc 0\.\d{4}, lr 0\.\d+, \d+ images/s", caplog.messages[1])


def test_a_run_resumed_at_its_end_trains_nothing_and_shows_a_full_bar(tmp_path, console):
    _fit(_SETTINGS, checkpoint=tmp_path / "run.pt", fingerprint={"train": "a"}, show_progress=False)
    seen = []
    _fit(_SETTINGS, checkpoint=tmp_path / "run.pt", fingerprint={"train": "a"}, on_epoch=seen.append)
    assert [entry["epoch"] for entry in seen] == [1, 2]  # the saved log, reported again
    _fit(_SETTINGS, checkpoint=tmp_path / "run.pt", fingerprint={"train": "a"}, show_progress=False)  # no callback
    drawn = console.export_text()
    assert drawn.startswith("train ━") and " 4/4 loss nan  acc nan  0 img/s " in drawn, drawn  # as it was saved


def test_another_rank_than_the_first_neither_reports_nor_saves_nor_draws(tmp_path, console, caplog, monkeypatch):
    from mollify.training import distributed

    monkeypatch.setattr(distributed, "is_main", lambda: False)
    seen = []
    with caplog.at_level("INFO", logger="mollify.training.loop"):
        _fit(_SETTINGS, checkpoint=tmp_path / "run.pt", fingerprint={"train": "a"}, on_epoch=seen.append)
        _fit(_SETTINGS, checkpoint=tmp_path / "run.pt", fingerprint={"train": "a"}, on_epoch=seen.append,
             show_progress=False)
    assert seen == [] and not (tmp_path / "run.pt").exists() and console.export_text() == "" and not caplog.messages


def test_under_torchrun_on_cpu_training_joins_gloo_and_needs_a_batch_that_splits_over_the_processes(monkeypatch):
    from mollify.training import distributed

    joined = []
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    monkeypatch.setattr(distributed.dist, "is_initialized", lambda: False)
    monkeypatch.setattr(distributed.dist, "init_process_group", joined.append)
    with pytest.raises(MollifyError) as refused:
        _fit(TrainSettings(**{**asdict(_SETTINGS), "batch_size": 5}), show_progress=False)
    assert joined == ["gloo"]
    assert str(refused.value) == ("train.batch_size 5 does not split evenly over 2 processes; "
                                  "set a multiple of 2 (it is the global batch, as on one device)")


@pytest.mark.parametrize("diffaug", [False, True])
def test_the_divergence_bound_is_that_of_the_output_classes_doubled_for_diffaugs_two_term_loss(monkeypatch, diffaug):
    from mollify.training import loop as training
    from mollify.augment import Mollification
    from mollify.training.divergence import classifier_loss_bound

    bounds = []

    class Recorded(training.DivergenceGuard):
        def __init__(self, bound, device):
            bounds.append(bound)
            raise _Stop

    monkeypatch.setattr(training, "DivergenceGuard", Recorded)
    recipe = BatchRecipe(10, mollification=Mollification(10, label_mode="la"))  # 11 outputs: the extra noise class
    recipe.diffaug = object() if diffaug else None  # only its presence matters before training starts
    with pytest.raises(_Stop):
        _fit(_SETTINGS, recipe, show_progress=False)
    assert bounds == [pytest.approx(classifier_loss_bound(11, 2 if diffaug else 1))]


def test_a_diverging_run_stops_with_the_hint_to_lower_the_learning_rate():
    from mollify.training.divergence import Diverged

    with pytest.raises(Diverged) as stopped:
        _fit(TrainSettings(**{**asdict(_SETTINGS), "lr": 1e12}), show_progress=False)
    assert str(stopped.value).endswith("; nothing was saved. Lower the learning rate.")


@pytest.mark.parametrize("rank", [0, 1])
def test_each_rank_trains_on_its_half_of_the_epochs_order_with_per_sample_draws_of_its_own(monkeypatch, console, rank):
    """The batch order of epoch e is randperm(n) from the generator seeded stream_seed(seed, e), the same on
    every rank; rank r takes the r-th half of each batch, and its per-sample draws (the generator handed to
    the augmentation, torch's global one) are seeded stream_seed(that seed, r) on a rank other than 0."""
    import types

    from mollify.training import distributed
    from mollify.training import loop as training
    from mollify.device import stream_seed

    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    monkeypatch.setattr(distributed, "rank", lambda: rank)
    monkeypatch.setattr(distributed.dist, "is_initialized", lambda: True)
    monkeypatch.setattr(distributed, "wrap", distributed.Step)  # the DDP-free step of one process
    monkeypatch.setattr(distributed, "mean", lambda value: value)
    seen, starts, forwards = [], [], []

    def augment(x, g):
        seen.append((x[:, 0, 0, 0].tolist(), g.initial_seed(), torch.initial_seed()))
        return x

    class Recipe(BatchRecipe):
        def start_epoch(self, epoch, epochs):
            starts.append((epoch, epochs))

        def forward(self, model, x, y, g):  # mollification, NFM: the same per-sample stream as the augmentation
            forwards.append(g.initial_seed())
            return super().forward(model, x, y, g)

    model = _linear_model()
    images = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1).expand(10, 3, 4, 4).contiguous()  # image i is all i
    ticks = iter(range(0, 100, 2))  # a fake clock: 2 s a reading, 4 s an epoch
    monkeypatch.setattr(training, "time", types.SimpleNamespace(perf_counter=lambda: float(next(ticks))))
    history = train(model, images, torch.arange(10), augment, _NORMALIZE,
                    Recipe(10), soft_cross_entropy, _SETTINGS)
    assert [entry["images_per_s"] for entry in history] == [2 * 4 / 4] * 2  # 4 images a rank, 2 ranks, in 4 s
    drawn = console.export_text()  # rank 0's bar alone: 4 images a rank, 2 ranks, in the 2 s to the update
    assert " 4/4 loss " in drawn and "  4 img/s " in drawn if rank == 0 else drawn == "", drawn
    expected = []
    for epoch in range(2):
        seed = stream_seed(0, epoch)
        order = torch.randperm(10, generator=torch.Generator().manual_seed(seed))
        draws = stream_seed(seed, rank) if rank else seed
        expected += [(order[4 * i : 4 * i + 4].tensor_split(2)[rank].tolist(), draws, draws) for i in range(2)]
    assert seen == expected
    assert forwards == [draws for _, draws, _ in expected]
    assert starts == [(0, 2), (1, 2)]


def test_the_epoch_log_and_the_bar_hold_the_mean_loss_the_accuracy_and_the_throughput(console, monkeypatch):
    """At lr 0 the model stays as initialised, so each epoch's loss and accuracy are computed here from its batch
    order alone (labels: the model's own answer for images 0-5, a wrong one for 6-9); a fake clock ticking 2 s a
    reading makes the throughput known (3 readings an epoch: its start, the bar's update after its last step, its end)."""
    import types

    import torch.nn.functional as F

    from mollify.training import loop as training
    from mollify.device import stream_seed

    ticks = iter(range(0, 100, 2))
    monkeypatch.setattr(training, "time", types.SimpleNamespace(perf_counter=lambda: float(next(ticks))))
    with torch.no_grad():
        logits = _linear_model()((_IMAGES.float() / 255 - 0.5) / 0.25)
    labels = logits.argmax(1)
    labels[6:] = (labels[6:] + 1) % 10
    settings = TrainSettings(**{**asdict(_SETTINGS), "lr": 0.0, "momentum": 0.0, "nesterov": False, "weight_decay": 0.0})
    seen = []
    _fit(settings, labels=labels, on_epoch=seen.append)
    for epoch, entry in enumerate(seen):
        order = torch.randperm(10, generator=torch.Generator().manual_seed(stream_seed(0, epoch)))
        batches = [order[:4], order[4:8]]  # 2 steps of 4, the last 2 images dropped
        losses = [float(F.cross_entropy(logits[b], labels[b])) for b in batches]
        correct = sum(int((b < 6).sum()) for b in batches)
        assert 0 < int((batches[0] < 6).sum()) < 4  # each count below matters
        assert entry["epoch"] == epoch + 1 and entry["lr"] == 0.0
        assert entry["train_loss"] == pytest.approx(sum(losses) / 2, rel=1e-6)
        assert entry["train_acc"] == correct / 8
        assert entry["images_per_s"] == 8 / 4  # 8 images between the readings at its start and end, 4 s apart
    drawn = console.export_text()
    # the bar after the last step: the epoch's mean loss and accuracy so far, 8 images in the 2 s since its start
    assert f" 4/4 loss {seen[-1]['train_loss']:.3f}  acc {seen[-1]['train_acc']:.3f}  4 img/s " in drawn, drawn


@pytest.mark.parametrize(("bad_step", "steps_done"), [(25, 40), (46, 50)])
def test_a_diverging_step_stops_the_run_at_the_next_check_every_20_steps_or_at_the_epochs_end(bad_step, steps_done):
    """50 steps an epoch (batch 1); a loss that is not finite at step `bad_step` is seen at the next host sync:
    after each 20th step and after the epoch's last."""
    from mollify.training.divergence import Diverged

    calls = []

    def loss_fn(logits, targets):
        calls.append(1)
        loss = soft_cross_entropy(logits, targets)
        return loss * math.nan if len(calls) == bad_step else loss

    model = _linear_model()
    settings = TrainSettings(**{**asdict(_SETTINGS), "batch_size": 1, "epochs": 1})
    with pytest.raises(Diverged, match=rf"^training diverged at step {bad_step}: loss nan is not finite"):
        train(model, torch.zeros(50, 3, 4, 4, dtype=torch.uint8), torch.arange(50) % 10, lambda x, g: x,
              _NORMALIZE, BatchRecipe(10), loss_fn, settings,
              show_progress=False)
    assert len(calls) == steps_done


@pytest.mark.parametrize(("precision", "dtype"), [("bf16", torch.bfloat16), ("auto", torch.float32), ("fp32", torch.float32)])
def test_the_forward_pass_runs_under_bf16_autocast_when_asked_even_on_cpu(precision, dtype):
    dtypes = []
    model = _linear_model()
    model.register_forward_hook(lambda module, args, out: dtypes.append(out.dtype))
    settings = TrainSettings(**{**asdict(_SETTINGS), "epochs": 1, "precision": precision})
    train(model, torch.zeros(8, 3, 4, 4, dtype=torch.uint8), torch.arange(8), lambda x, g: x,
          _NORMALIZE, BatchRecipe(10), soft_cross_entropy, settings,
          show_progress=False)
    assert dtypes == [dtype, dtype]  # 2 steps, as asked ("auto": bf16 on CUDA alone)


def test_every_tensor_the_training_loop_makes_is_placed_on_the_datas_device():
    with DefaultDeviceWatch() as watch:
        _fit(_SETTINGS, show_progress=False)
    assert watch.unplaced == []
