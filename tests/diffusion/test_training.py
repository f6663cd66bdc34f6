"""The DDPM's training loop and loading, by value: the EMA update, the schedule's settings, what each step
draws (flips, t, the step count), resume and refusal, the optimiser, progress and log, the model-loading
messages (Ho et al. 2020; diffusers' DDPMScheduler / UNet2DModel)."""

from dataclasses import asdict, replace

import pytest
import torch

from mollify.diffusion import training as ddpm
from mollify.diffusion.model import load_unet, make_scheduler, make_unet, to_model_range
from mollify.diffusion.training import DiffusionSettings, train_diffusion
from mollify.training.divergence import Diverged
from mollify.errors import MollifyError
from tests.conftest import DefaultDeviceWatch

SETTINGS = DiffusionSettings(steps=2, batch_size=64, lr=1e-3, ema_decay=0.99, seed=0, eval_every=1, eval_timesteps=(300,))
IMAGES = torch.randint(0, 256, (68, 1, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(5))


def _train(settings=SETTINGS, **kwargs):
    """`train_diffusion` of a fresh 1-channel 8 px demo UNet on IMAGES (the last 4 held out); returns
    the initial weights, the trained UNet, the EMA model, the log and the (x0, t) of each training step
    (q_sample's calls on 64 images, not the evaluations' on the 4 held out)."""
    torch.manual_seed(0)
    unet = make_unet("demo", 8, channels=1)
    initial = {k: v.clone() for k, v in unet.state_dict().items()}
    drawn = []

    def recording_q_sample(x0, t, noise, abar):
        if len(x0) == 64:
            drawn.append((x0.clone(), t.clone()))
        return original(x0, t, noise, abar)

    original = ddpm.q_sample
    ddpm.q_sample = recording_q_sample
    try:
        ema, log = train_diffusion(unet, IMAGES[:64], IMAGES[64:], settings, **kwargs)
    finally:
        ddpm.q_sample = original
    return initial, unet, ema, log, drawn


def test_ema_update_moves_each_weight_by_one_minus_decay_and_copies_the_buffers():
    model, ema = torch.nn.BatchNorm2d(2), torch.nn.BatchNorm2d(2)
    torch.nn.init.constant_(model.weight, 1.0), torch.nn.init.constant_(ema.weight, 0.0)
    model.running_mean.fill_(3.0)
    ddpm._ema_update(ema, model, 0.9)
    torch.testing.assert_close(ema.weight, torch.full((2,), 0.1))  # 0.9 * 0 + 0.1 * 1
    torch.testing.assert_close(ema.running_mean, torch.full((2,), 3.0))
    assert torch.equal(model.weight, torch.ones(2))  # the trained model is left alone


def test_the_scheduler_is_ddpms_linear_epsilon_schedule_with_clipping():
    config = make_scheduler().config
    assert (config.num_train_timesteps, config.beta_schedule, config.beta_start, config.beta_end,
            config.prediction_type, config.clip_sample) == (1000, "linear", 1e-4, 0.02, "epsilon", True)


def test_each_step_draws_a_batch_with_half_of_it_mirrored_left_right_and_t_from_all_1000_steps():
    _, _, _, _, drawn = _train()
    assert len(drawn) == 2  # one batch a step
    originals, mirrored = to_model_range(IMAGES[:64]), to_model_range(IMAGES[:64]).flip(-1)
    for x0, t in drawn:
        assert x0.shape == (64, 1, 8, 8)
        is_original = (x0[:, None] == originals[None]).flatten(2).all(2).any(1)
        is_mirrored = (x0[:, None] == mirrored[None]).flatten(2).all(2).any(1)
        assert bool((is_original | is_mirrored).all())  # each an image, or the image flipped left-right
        assert 0.3 < float(is_mirrored.float().mean()) < 0.7  # about half of each batch, drawn per sample
    t = torch.cat([t for _, t in drawn])
    assert int(t.min()) >= 0 and int(t.max()) <= 999 and int(t.min()) < 100 and int(t.max()) > 900


def test_the_ema_starts_with_a_fast_warm_up_and_is_frozen_and_adam_has_the_settings_lr(tmp_path):
    initial, unet, ema, _, _ = _train(replace(SETTINGS, steps=1), checkpoint=tmp_path / "run.pt", fingerprint={"run": "a"})
    # step 0: decay min(0.99, (1 + 0) / (10 + 0)) = 0.1, so the EMA is 0.1 initial + 0.9 trained
    for name, value in ema.named_parameters():
        torch.testing.assert_close(value, 0.1 * initial[name] + 0.9 * unet.state_dict()[name], rtol=1e-5, atol=1e-6)
        assert not value.requires_grad
    state = torch.load(tmp_path / "run.pt", weights_only=True)
    assert state["settings"] == asdict(replace(SETTINGS, steps=1))  # what made the checkpoint
    group = state["optimizer"]["param_groups"][0]
    assert (group["lr"], group["betas"]) == (1e-3, (0.9, 0.999))


def test_the_ema_decay_warms_up_as_one_plus_n_over_ten_plus_n(monkeypatch):
    decays = []
    update = ddpm._ema_update
    monkeypatch.setattr(ddpm, "_ema_update", lambda ema, model, decay: (decays.append(decay), update(ema, model, decay)))
    _train(replace(SETTINGS, steps=3, ema_decay=0.2), show_progress=False)
    assert decays == pytest.approx([0.1, 2 / 11, 0.2])  # min(0.2, (1 + n) / (10 + n)) at steps n = 0, 1, 2


def test_the_log_holds_the_mean_loss_since_the_last_evaluation_and_the_bar_the_throughput(console, monkeypatch):
    """Steps of 64 images, evaluated every 2 steps; a fake clock ticking 2 s a reading (the start, then
    two readings at each evaluation: the throughput, the restart) makes the throughput 2 x 64 / 2 s."""
    import types

    ticks = iter(range(0, 100, 2))
    monkeypatch.setattr(ddpm, "time", types.SimpleNamespace(perf_counter=lambda: float(next(ticks))))
    losses = []
    mse_loss = ddpm.F.mse_loss

    def recording_mse_loss(input, target, reduction="mean"):
        value = mse_loss(input, target, reduction=reduction)
        if reduction == "mean":  # the training loss (the evaluation sums)
            losses.append(float(value.detach()))
        return value

    monkeypatch.setattr(ddpm, "F", types.SimpleNamespace(mse_loss=recording_mse_loss))
    _, _, _, log, _ = _train(replace(SETTINGS, steps=4, eval_every=2))
    assert [row["step"] for row in log] == [2, 4] and len(losses) == 4
    assert [row["train_loss"] for row in log] == pytest.approx([sum(losses[:2]) / 2, sum(losses[2:]) / 2], rel=1e-6)
    assert f" 4/4 loss {log[-1]['train_loss']:.4f}  64 img/s " in console.export_text()


def test_a_resumed_run_performs_only_its_remaining_steps_and_another_fingerprint_starts_over(tmp_path, caplog):
    checkpoint = tmp_path / "run.pt"
    _train(checkpoint=checkpoint, fingerprint={"run": "a"}, show_progress=False)
    more = replace(SETTINGS, steps=3)
    with caplog.at_level("INFO", logger="mollify"):
        _, _, _, log, drawn = _train(more, checkpoint=checkpoint, fingerprint={"run": "a"}, show_progress=False)
    assert f"resumed from step 2 of {checkpoint}" in caplog.messages
    assert len(drawn) == 1 and [row["step"] for row in log] == [1, 2, 3]  # step 3 alone, after the saved log
    _, _, _, log, drawn = _train(more, checkpoint=checkpoint, fingerprint={"run": "b"}, show_progress=False)
    assert len(drawn) == 3 and [row["step"] for row in log] == [1, 2, 3]


def test_the_progress_bar_shows_steps_loss_and_throughput_and_without_it_each_evaluation_is_a_log_line(
        console, caplog, tmp_path):
    with caplog.at_level("INFO", logger="mollify.diffusion"):
        _train(checkpoint=tmp_path / "run.pt", fingerprint={"run": "a"})
        drawn = console.export_text()
        assert drawn.startswith("diffusion ━") and " 2/2 loss " in drawn and " img/s " in drawn, drawn
        assert not caplog.messages
        _train(checkpoint=tmp_path / "run.pt", fingerprint={"run": "a"})  # resumed at its end: nothing to do
        assert " 2/2 loss nan  0 img/s " in console.export_text()
        _train(show_progress=False)
    assert console.export_text() == ""
    assert [m.split(":")[0] for m in caplog.messages] == [f"resumed from step 2 of {tmp_path / 'run.pt'}",
                                                          "diffusion step 1/2", "diffusion step 2/2"]


def test_every_tensor_the_diffusion_training_makes_is_placed_on_the_datas_device():
    with DefaultDeviceWatch() as watch:
        _train(show_progress=False)
    assert watch.unplaced == []


def test_a_diverging_diffusion_run_stops_with_the_hint_to_lower_the_learning_rate():
    with pytest.raises(Diverged) as stopped:
        _train(replace(SETTINGS, lr=1e6, steps=4, eval_every=4), show_progress=False)
    assert str(stopped.value).endswith("; nothing was saved. Lower the learning rate.")


def test_load_unet_messages_and_the_hub_only_when_allowed(tmp_path, monkeypatch):
    from diffusers import UNet2DModel

    (tmp_path / "empty").mkdir()
    with pytest.raises(MollifyError) as refused:
        load_unet(tmp_path / "empty")
    assert str(refused.value) == (f"{tmp_path / 'empty'} is not a diffusers model directory (no config.json or "
                                  "unet/config.json); re-run the diffusion stage or point diffusion.pretrained at a "
                                  "saved UNet2DModel.")
    with pytest.raises(MollifyError) as refused:
        load_unet("google/ddpm-cifar10-32")
    assert str(refused.value) == ("diffusion.pretrained: 'google/ddpm-cifar10-32' is not a local directory; to fetch it "
                                  "from the Hugging Face hub set diffusion.download: true (needs network), or give a "
                                  "local path.")
    asked = []

    def from_pretrained(source, **kwargs):
        asked.append(source)
        if source == "offline/model":
            raise OSError("We couldn't connect to 'https://huggingface.co'.\nCheck your connection.")
        return "the model"

    monkeypatch.setattr(UNet2DModel, "from_pretrained", from_pretrained)
    assert load_unet("google/ddpm-cifar10-32", allow_download=True) == "the model"
    with pytest.raises(MollifyError) as refused:
        load_unet("offline/model", allow_download=True)
    assert asked == ["google/ddpm-cifar10-32", "offline/model"]
    assert str(refused.value) == ("could not fetch the diffusion model 'offline/model' from the hub (OSError: We couldn't "
                                  "connect to 'https://huggingface.co'.); check the id and the network, or download it "
                                  "elsewhere and set diffusion.pretrained to its local directory.")
    assert refused.value.__cause__ is None and refused.value.__suppress_context__



def test_the_global_norm_is_clipped_as_tf_clip_by_global_norm():
    a, b = torch.zeros(2, requires_grad=True), torch.zeros(1, requires_grad=True)
    a.grad, b.grad = torch.tensor([3.0, 0.0]), torch.tensor([4.0])  # global norm 5
    assert float(ddpm.clip_global_norm_([a, b], 1.0)) == 5.0
    torch.testing.assert_close(torch.cat([a.grad, b.grad]), torch.tensor([0.6, 0.0, 0.8]), rtol=0, atol=1e-7)
    a.grad, b.grad = torch.tensor([0.3, 0.0]), torch.tensor([0.4])  # below the bound: unchanged
    ddpm.clip_global_norm_([a, b], 1.0)
    assert torch.equal(torch.cat([a.grad, b.grad]), torch.tensor([0.3, 0.0, 0.4]))


def test_ho_et_al_warm_up_is_linear_from_zero_over_5000_steps():
    assert [ddpm.warmed_up_lr(2e-4, 5000, s) for s in (0, 1, 2500, 5000, 800_000)] == pytest.approx([0, 4e-8, 1e-4, 2e-4, 2e-4])
    assert ddpm.warmed_up_lr(2e-4, 0, 0) == 2e-4


def test_training_applies_the_warm_up_and_the_clipped_norm(monkeypatch):
    steps = []
    original_step = torch.optim.Adam.step

    def recording_step(self, *args, **kwargs):
        grads = [p.grad for g in self.param_groups for p in g["params"] if p.grad is not None]
        steps.append((self.param_groups[0]["lr"], float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])))))
        return original_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.Adam, "step", recording_step)
    _train(replace(SETTINGS, steps=3, grad_clip=1e-3, warmup_steps=2))
    assert [lr for lr, _ in steps] == pytest.approx([0.0, 5e-4, 1e-3])  # lr x min(step / 2, 1)
    assert [norm for _, norm in steps] == pytest.approx([1e-3] * 3, rel=1e-5)  # every gradient is larger than 1e-3
