"""DiffAug: the one-step Tweedie estimate against diffusers, the DDPM's training, the ensemble."""

import math
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mollify.augment import BatchRecipe, DiffAug, NormalizedDiffAug, ensemble_timesteps
from mollify.data.synthetic import generate
from mollify.device import Normalize, seeded_generator
from mollify.diffusion.model import (denoising_mse, linear_alphas_cumprod, load_unet, make_scheduler, make_unet,
                                     q_sample, save_pipeline, tweedie_x0)
from mollify.diffusion.training import DiffusionSettings, train_diffusion
from mollify.evaluation.predict import member_streams, predict_probs, predict_probs_ensemble
from mollify.training.losses import soft_cross_entropy
from mollify.models import create_model


def test_tweedie_estimate_equals_diffusers_pred_original_sample_per_sample_t():
    scheduler = make_scheduler()
    g = torch.Generator().manual_seed(0)
    x_t = 1.5 * torch.randn(6, 3, 8, 8, generator=g)
    eps = torch_eps = torch.randn(6, 3, 8, 8, generator=g)
    t = torch.tensor([0, 1, 99, 500, 998, 999])
    ours = tweedie_x0(x_t, eps, t, scheduler.alphas_cumprod)
    for i in range(len(t)):
        ref = scheduler.step(torch_eps[i : i + 1], int(t[i]), x_t[i : i + 1]).pred_original_sample
        torch.testing.assert_close(ours[i : i + 1], ref, rtol=1e-5, atol=1e-5)
    assert ours.abs().max() <= 1  # clamped, as clip_sample


def test_forward_process_matches_diffusers_add_noise():
    scheduler = make_scheduler()
    x0, noise = torch.rand(4, 3, 8, 8) * 2 - 1, torch.randn(4, 3, 8, 8)
    t = torch.tensor([3, 250, 600, 999])
    torch.testing.assert_close(q_sample(x0, t, noise, scheduler.alphas_cumprod), scheduler.add_noise(x0, noise, t))
    assert scheduler.config.beta_start == 1e-4 and scheduler.config.beta_end == 0.02 and len(scheduler.alphas_cumprod) == 1000
    assert torch.equal(linear_alphas_cumprod(), scheduler.alphas_cumprod)  # ours, without importing diffusers


@pytest.fixture(scope="module")
def trained():
    """The demo UNet trained briefly on synthetic images, with its log."""
    images, _ = generate(288, seed=0)
    x = torch.from_numpy(images)
    torch.manual_seed(0)
    settings = DiffusionSettings(steps=30, batch_size=16, lr=1e-3, ema_decay=0.99, seed=0, eval_every=10,
                                 eval_timesteps=(100, 300, 500))
    ema, log = train_diffusion(make_unet("demo", 32), x[:256], x[256:], settings, show_progress=False)
    return ema, log, x[256:]


def test_denoising_error_falls_during_training_and_grows_with_t(trained):
    ema, log, held_out = trained
    assert [row["step"] for row in log] == [10, 20, 30]
    for t in (100, 300, 500):
        assert log[-1][f"mse_t{t}"] < log[0][f"mse_t{t}"]
    curve = denoising_mse(ema, held_out, [0, 100, 300, 500, 900], linear_alphas_cumprod(), seed=1)
    values = list(curve.values())
    assert values == sorted(values)
    assert curve[0] < 1e-3  # x0_hat at t = 0 is close to x0


def test_diffaug_is_seeded_in_range_and_without_gradient(trained):
    ema, _, held_out = trained
    diffaug = DiffAug(ema)
    x = (held_out[:8].float() / 255).requires_grad_(True)
    a = diffaug(x, torch.Generator().manual_seed(3))
    b = diffaug(x, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and not a.requires_grad
    assert a.shape == x.shape and 0 <= a.min() and a.max() <= 1
    assert not torch.equal(a, diffaug(x, torch.Generator().manual_seed(4)))
    assert diffaug(x, t=0) is x  # the ensemble's raw member
    # larger t moves further from the image
    far = [(diffaug(x, torch.Generator().manual_seed(0), t) - x).pow(2).mean() for t in (50, 400, 900)]
    assert far[0] < far[1] < far[2]


def test_normalized_diffaug_makes_classifier_inputs_from_uint8_images(trained):
    ema, _, held_out = trained
    normalize = Normalize((0.5, 0.4, 0.3), (0.2, 0.25, 0.3), torch.device("cpu"))
    diffaug = DiffAug(ema)
    ours = NormalizedDiffAug(diffaug, normalize)(held_out[:4], torch.Generator().manual_seed(1))
    expected = normalize(diffaug(held_out[:4].float() / 255, torch.Generator().manual_seed(1)) * 255)
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-4)


class _Recorder:
    """A stand-in for NormalizedDiffAug that records the images it is given."""

    def __call__(self, images, g):
        self.images = images.clone()
        return torch.full(images.shape, 7.0)


def test_diffaug_branch_receives_the_unaugmented_image_and_the_clean_branch_the_recipe():
    normalize = Normalize((0.5,) * 3, (0.25,) * 3, torch.device("cpu"))
    images = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8)
    flipped = lambda x, g: x.flip(-1)  # noqa: E731  a recipe augmentation with a known result
    recorder = _Recorder()
    recipe = BatchRecipe(10, diffaug=recorder)
    x, y = recipe.prepare(images, torch.arange(6), flipped, normalize, torch.Generator())
    assert torch.equal(recorder.images, images)  # the un-augmented uint8 images
    torch.testing.assert_close(x[:6], normalize(images.flip(-1)))
    assert bool((x[6:] == 7).all()) and x.shape == (12, 3, 32, 32) and y.shape == (6, 10)


def test_training_loss_is_ce_clean_plus_ce_diffaug(trained):
    ema, _, held_out = trained
    normalize = Normalize((0.5,) * 3, (0.25,) * 3, torch.device("cpu"))
    recipe = BatchRecipe(10, diffaug=NormalizedDiffAug(DiffAug(ema), normalize))
    model = create_model("small_resnet", 10).eval()
    labels = torch.arange(8) % 10
    flipped = lambda x, g: x.flip(-1)  # noqa: E731
    x, y = recipe.prepare(held_out[:8], labels, flipped, normalize, torch.Generator().manual_seed(5))
    logits, targets = recipe.forward(model, x, y, torch.Generator())
    assert logits.shape == (16, 10) and torch.equal(targets, y)
    augmented = NormalizedDiffAug(DiffAug(ema), normalize)(held_out[:8], torch.Generator().manual_seed(5))
    expected = F.cross_entropy(model(normalize(held_out[:8].flip(-1))), labels) + F.cross_entropy(model(augmented), labels)
    torch.testing.assert_close(recipe.loss(soft_cross_entropy, logits, targets), expected, rtol=1e-4, atol=1e-4)


def test_ensemble_of_t0_alone_is_the_default_evaluation(trained):
    ema, _, held_out = trained
    normalize = Normalize((0.5,) * 3, (0.25,) * 3, torch.device("cpu"))
    model = create_model("small_resnet", 10)
    cpu = torch.device("cpu")
    default = predict_probs(model, held_out, normalize, cpu, batch_size=32)
    assert torch.equal(predict_probs_ensemble(model, held_out, normalize, cpu, DiffAug(ema), member_streams(0, [0], cpu),
                                              batch_size=32), default)
    members = ensemble_timesteps()
    assert members == [0, 50, 100, 150, 200, 250, 300, 350, 400, 450]
    de = predict_probs_ensemble(model, held_out, normalize, cpu, DiffAug(ema), member_streams(0, members[:3], cpu), batch_size=32)
    torch.testing.assert_close(de.sum(1), torch.ones(len(held_out), dtype=torch.float64))
    assert not torch.allclose(de, default)


def test_ensemble_members_continue_their_noise_stream_across_chunks(trained):
    """Chunks of one evaluation draw fresh noise; new streams from the same seed repeat it."""
    ema, _, held_out = trained
    normalize = Normalize((0.5,) * 3, (0.25,) * 3, torch.device("cpu"))
    model = create_model("small_resnet", 10).eval()
    cpu = torch.device("cpu")
    chunk = held_out[:8]

    def de(streams):
        return predict_probs_ensemble(model, chunk, normalize, cpu, DiffAug(ema), streams, batch_size=8)

    streams = member_streams(0, [200], cpu)
    first, second = de(streams), de(streams)  # the same images as two chunks of one evaluation
    assert not torch.allclose(first, second)
    torch.testing.assert_close(de(member_streams(0, [200], cpu)), first)
    g = seeded_generator(0, 200, cpu)
    noise_1 = DiffAug(ema)(chunk.float() / 255, g, 200)
    torch.testing.assert_close(predict_probs(model, chunk, normalize, cpu, 8, transform=lambda x: noise_1), first)


def test_pipeline_directory_round_trip(trained, tmp_path):
    ema, _, held_out = trained
    save_pipeline(ema, tmp_path / "diffusion")
    assert (tmp_path / "diffusion" / "model_index.json").is_file()
    loaded = load_unet(tmp_path / "diffusion")
    t = torch.full((4,), 300)
    x = held_out[:4].float() / 127.5 - 1
    torch.testing.assert_close(loaded(x, t).sample, ema(x, t).sample)


def test_diffusion_training_resumes_exactly(tmp_path, monkeypatch, caplog):
    """A run killed after its first checkpoint resumes (and says so) to the weights of an
    uninterrupted run."""
    from mollify.diffusion import training as ddpm

    x = torch.from_numpy(generate(40, seed=1)[0])
    settings = DiffusionSettings(steps=6, batch_size=4, lr=1e-3, ema_decay=0.9, seed=0, eval_every=3, eval_timesteps=(300,))

    def run(checkpoint):
        torch.manual_seed(0)
        return train_diffusion(make_unet("demo", 32), x[:32], x[32:], settings, checkpoint, {"run": "f"}, show_progress=False)

    whole, whole_log = run(None)
    saved = ddpm.save_torch

    def save_then_die(path, obj):
        saved(path, obj)
        raise KeyboardInterrupt

    monkeypatch.setattr(ddpm, "save_torch", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "ckpt.pt")
    monkeypatch.setattr(ddpm, "save_torch", saved)
    caplog.set_level("INFO", logger="mollify")
    resumed, resumed_log = run(tmp_path / "ckpt.pt")
    assert f"resumed from step 3 of {tmp_path / 'ckpt.pt'}" in caplog.messages
    assert resumed_log == whole_log
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)


class _ZeroEps(torch.nn.Module):
    """A 'UNet' that predicts zero noise and records the timesteps it is asked about: then
    x0_hat = x0 + sqrt((1 - abar_t) / abar_t) z, clamped, is known in closed form."""

    def __init__(self):
        super().__init__()
        self.device, self.timesteps = torch.device("cpu"), []

    def forward(self, x, t):
        self.timesteps.append(t.clone())
        return types.SimpleNamespace(sample=torch.zeros_like(x))


def _abar() -> np.ndarray:
    """DDPM's linear schedule (Ho et al. 2020): betas 1e-4..0.02 over 1000 steps, cumulative products, in float64."""
    return np.cumprod(1 - np.linspace(1e-4, 0.02, 1000))


def test_diffaug_draws_t_uniformly_from_all_1000_steps():
    unet = _ZeroEps()
    DiffAug(unet)(torch.rand(40_000, 1, 1, 1), torch.Generator().manual_seed(0))
    t = unet.timesteps[0].double()
    assert int(t.min()) == 0 and int(t.max()) == 999
    assert float(t.mean()) == pytest.approx(499.5, abs=5)  # the mean of U{0..999}; its standard error is 1.4
    assert float(t.var()) == pytest.approx((1000**2 - 1) / 12, rel=0.03)
    assert float((t < 100).double().mean()) == pytest.approx(0.1, abs=0.01)


@pytest.mark.parametrize("t", [30, 300])
def test_diffaug_step_known_value(t):
    x = torch.rand(3, 3, 4, 4, generator=torch.Generator().manual_seed(1))
    out = DiffAug(_ZeroEps())(x, torch.Generator().manual_seed(2), t)
    z = torch.randn(x.shape, generator=torch.Generator().manual_seed(2)).double()
    scale = math.sqrt((1 - _abar()[t]) / _abar()[t])
    expected = ((x.double() * 2 - 1 + scale * z).clamp(-1, 1) + 1) / 2
    torch.testing.assert_close(out.double(), expected, atol=1e-5, rtol=1e-5)
    assert ensemble_timesteps() == [0, 50, 100, 150, 200, 250, 300, 350, 400, 450]
    assert ensemble_timesteps(100, 250) == [0, 100, 200]
    assert ensemble_timesteps(1, 3) == [0, 1, 2, 3] and ensemble_timesteps(1)[-1] == 450  # max_t included, no further
    assert not any(p.requires_grad for p in DiffAug(make_unet("demo", 32)).unet.parameters())  # a frozen denoiser


def test_normalized_diffaug_standardises_the_step_of_the_uint8_images():
    images = torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    step = NormalizedDiffAug(DiffAug(_ZeroEps()), Normalize((0.5,) * 3, (0.25,) * 3, torch.device("cpu")))
    out = step(images, torch.Generator().manual_seed(4))
    g = torch.Generator().manual_seed(4)
    t = torch.randint(1000, (2,), generator=g)  # the per-sample t is drawn first, then the noise
    z = torch.randn((2, 3, 4, 4), generator=g).double()
    assert torch.equal(step.diffaug.unet.timesteps[0], t)
    t = t.view(-1, 1, 1, 1)
    abar = torch.from_numpy(_abar())[t]
    x01 = ((images.double() / 127.5 - 1 + ((1 - abar) / abar).sqrt() * z).clamp(-1, 1) + 1) / 2
    torch.testing.assert_close(out.double(), (x01 - 0.5) / 0.25, atol=1e-4, rtol=1e-4)


def test_pipeline_saved_over_an_old_one_and_a_bare_unet_directory_load(tmp_path):
    """save_pipeline replaces what is there (an old pipeline, a stale temporary folder) and writes
    the DDPM scheduler beside the UNet; load_unet also reads a UNet saved on its own."""
    import json

    unet = make_unet("demo", 32)
    directory = tmp_path / "diffusion"
    save_pipeline(make_unet("demo", 32), directory)
    (tmp_path / "diffusion.tmp").mkdir()
    (tmp_path / "diffusion.tmp" / "stale.txt").write_text("from a killed save")
    save_pipeline(unet, directory)  # over the old pipeline, past the stale temporary folder
    assert not (directory / "stale.txt").exists() and not (tmp_path / "diffusion.tmp").exists()
    scheduler = json.loads((directory / "scheduler" / "scheduler_config.json").read_text())
    assert scheduler["num_train_timesteps"] == 1000 and scheduler["beta_schedule"] == "linear"
    x, t = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)), torch.full((2,), 300)
    for path in (directory, tmp_path / "bare"):
        if path.name == "bare":
            unet.save_pretrained(path)
        torch.testing.assert_close(load_unet(path)(x, t).sample, unet(x, t).sample)


def test_unet_shapes_model_range_and_the_message_of_an_unknown_unet():
    from mollify.diffusion.model import to_model_range
    from mollify.errors import MollifyError

    unet = make_unet("demo", 16, channels=1)
    assert (unet.config.sample_size, unet.config.in_channels, unet.config.out_channels) == (16, 1, 1)
    with pytest.raises(MollifyError) as e:
        make_unet("ddpm", 32)
    assert str(e.value) == "unknown UNet 'ddpm'; choices: demo, ddpm_cifar10"
    assert to_model_range(torch.tensor([0, 51, 255], dtype=torch.uint8)).tolist() == pytest.approx([-1, 51 / 127.5 - 1, 1])


def _estimate_errors(precision: str, timesteps=(800, 999), n: int = 8) -> dict[int, tuple[float, float]]:
    """Per t: (rms error of the unclamped one-step estimate in [-1, 1], max error of DiffAug's output in
    8-bit levels) of the UNet's prediction in `precision` against fp32, for a random demo UNet on CPU."""
    torch.manual_seed(0)
    unet = make_unet("demo", 32).eval()
    g = torch.Generator().manual_seed(1)
    x = F.avg_pool2d(torch.rand(n, 3, 32, 32, generator=g), 5, 1, 2)  # smooth images in [0, 1]
    noise = torch.randn(x.shape, generator=g)
    abar = linear_alphas_cumprod()
    out = {}
    for t in timesteps:
        tt = torch.full((n,), t)
        x_t = q_sample(x * 2 - 1, tt, noise, abar)
        estimates = {}
        for p in ("fp32", precision):
            with torch.no_grad(), torch.autocast("cpu", dtype={"fp16": torch.float16, "bf16": torch.bfloat16}.get(p, torch.float32),
                                                 enabled=p != "fp32"):
                eps = unet(x_t, tt).sample.float()
            estimates[p] = (x_t - (1 - abar[t]).sqrt() * eps) / abar[t].sqrt()
        diffaug = {p: DiffAug(unet, p)(x, torch.Generator().manual_seed(2), t) for p in ("fp32", precision)}
        out[t] = (float((estimates[precision] - estimates["fp32"]).pow(2).mean().sqrt()),
                  float((diffaug[precision] - diffaug["fp32"]).abs().max() * 255))
    return out


def test_the_one_step_estimate_in_fp32_is_fp32s_and_fp16_rounds_8x_finer_than_bf16():
    # 1 / sqrt(abar_t) = 25.8 at t = 800 and 157 at t = 999 amplifies the rounding of eps_theta
    assert 1 / linear_alphas_cumprod()[800].sqrt() == pytest.approx(25.8, abs=0.1)
    assert 1 / linear_alphas_cumprod()[999].sqrt() == pytest.approx(157.4, abs=0.1)
    assert _estimate_errors("fp32") == {800: (0.0, 0.0), 999: (0.0, 0.0)}
    fp16, bf16 = _estimate_errors("fp16"), _estimate_errors("bf16")
    # measured (seed 0, 8 images): fp16 rms 0.013 / 0.08, bf16 0.10 / 0.6 at t = 800 / 999
    for t, bound in ((800, 0.03), (999, 0.2)):
        assert fp16[t][0] < bound < bf16[t][0] and bf16[t][0] > 5 * fp16[t][0]
