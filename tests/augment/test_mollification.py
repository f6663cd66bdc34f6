"""The mathematics of supervised mollification (shared/reference/methods.md)."""

import math

import pytest
import torch
import torch_dct

from mollify.augment.mollification import (
    Mollification, add_noise, blur_sigma, gamma_blur, gamma_noise, heat_blur, noise_schedule, smooth_targets,
)
from mollify.data.synthetic import generate
from mollify.training.losses import binary_cross_entropy, normalized_cross_entropy, soft_cross_entropy


def _images(n: int = 16) -> torch.Tensor:
    x = torch.from_numpy(generate(n, seed=0)[0]).float() / 255
    return (x - 0.5) / 0.25


def test_blur_sigma_schedule():
    t = torch.tensor([0.0, 0.2, 0.5, 0.9, 1.0])
    sigma = blur_sigma(t, 32)
    assert sigma[0] == pytest.approx(0.3) and sigma[-1] == pytest.approx(32)
    assert sigma[1:4].tolist() == pytest.approx([0.76, 3.1, 20.0], abs=0.05 * 20)
    assert sigma[2] == pytest.approx(math.sqrt(0.3 * 32), rel=1e-6)  # geometric midpoint, ~3.1
    assert blur_sigma(torch.tensor(0.2), 32) == pytest.approx(0.76, abs=0.01)
    assert blur_sigma(torch.tensor(0.9), 32) == pytest.approx(20.0, rel=0.03)


def test_blur_at_t0_is_nearly_identity_and_keeps_channel_means():
    x = _images()
    t0 = heat_blur(x, torch.zeros(len(x)))
    assert (t0 - x).abs().mean() < 0.05 * x.abs().mean()  # sigma 0.3 px: almost nothing
    t = torch.rand(len(x), generator=torch.Generator().manual_seed(0))
    blurred = heat_blur(x, t)
    torch.testing.assert_close(blurred.mean(dim=(2, 3)), x.mean(dim=(2, 3)), atol=1e-4, rtol=0)
    flat = heat_blur(x, torch.ones(len(x)))
    assert flat.std(dim=(2, 3)).max() < 0.1 * x.std(dim=(2, 3)).min()  # nearly flat at the means
    # more t, more blur: high-frequency energy falls monotonically
    energies = [heat_blur(x, torch.full((len(x),), v)).diff(dim=-1).pow(2).mean() for v in (0.0, 0.3, 0.6, 0.9)]
    assert all(a > b for a, b in zip(energies, energies[1:]))


def test_blur_equals_torch_dct_linear_layers():
    """Our matmul DCT is torch-dct's LinearDCT / apply_linear_2d (unnormalised)."""
    x = _images(4)
    t = torch.tensor([0.1, 0.4, 0.7, 1.0])
    dct, idct = torch_dct.LinearDCT(32, "dct"), torch_dct.LinearDCT(32, "idct")
    freqs = math.pi * torch.arange(32) / 32
    lam = freqs[:, None] ** 2 + freqs[None] ** 2
    decay = torch.exp(-lam[None, None] * (blur_sigma(t, 32) ** 2 / 2)[:, None, None, None])
    ref = torch_dct.apply_linear_2d(decay * torch_dct.apply_linear_2d(x, dct), idct)
    torch.testing.assert_close(heat_blur(x, t), ref, atol=1e-4, rtol=1e-4)


def test_noise_keeps_unit_variance():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 3, 32, 32, generator=g)
    for value in (0.0, 0.3, 0.7, 1.0):
        t = torch.full((256,), value)
        xt = add_noise(x, t, torch.randn(x.shape, generator=g))
        assert float(xt.var()) == pytest.approx(1.0, abs=0.01)
    a, s = noise_schedule(torch.linspace(0, 1, 11))
    torch.testing.assert_close(a**2 + s**2, torch.ones(11))


def test_label_schedules():
    t = torch.linspace(0, 1, 21)
    torch.testing.assert_close(gamma_noise(t, 1.0), torch.sin(math.pi * t / 2) ** 2)
    a, s = noise_schedule(t[1:])
    torch.testing.assert_close(gamma_noise(t[1:], 2.0), (1 / (1 + a**2 / s**2)) ** 2)  # the SNR form
    assert gamma_noise(torch.tensor(0.0)) == 0 and gamma_noise(torch.tensor(1.0)) == pytest.approx(1.0)
    for bpow in (0.5, 1.0, 2.0):
        torch.testing.assert_close(gamma_blur(t, bpow), t**bpow)
    # the defaults are the paper's linear schedules (npow = bpow = 1)
    torch.testing.assert_close(gamma_noise(t), torch.sin(math.pi * t / 2) ** 2)
    torch.testing.assert_close(gamma_blur(t), t)


def test_target_modes():
    y = torch.nn.functional.one_hot(torch.tensor([2, 0, 1]), 4).float()
    gamma = torch.tensor([0.0, 0.5, 1.0])
    ls = smooth_targets(y, gamma, "ls", 4)
    torch.testing.assert_close(ls.sum(1), torch.ones(3))
    torch.testing.assert_close(ls[1], torch.tensor([0.5 + 0.125, 0.125, 0.125, 0.125]))
    torch.testing.assert_close(ls[2], torch.full((4,), 0.25))
    torch.testing.assert_close(smooth_targets(y, gamma, "ld", 4), (1 - gamma)[:, None] * y)
    y5 = torch.nn.functional.pad(y, (0, 1))
    la = smooth_targets(y5, gamma, "la", 4)
    torch.testing.assert_close(la[:, 4], gamma)
    torch.testing.assert_close(la[:, :4], y)
    lm = smooth_targets(y5, gamma, "lm", 4)
    torch.testing.assert_close(lm.sum(1), torch.ones(3))


def test_roles_and_beta_moments_over_many_samples():
    n = 60_000
    m = Mollification(num_classes=10, roles="xnbe", alpha=2.0, beta=5.0)
    torch.manual_seed(0)
    letters, t = m.sample(n, torch.device("cpu"), torch.Generator().manual_seed(0))
    for c in "xnbe":
        assert (letters == ord(c)).double().mean() == pytest.approx(0.25, abs=0.01)
    assert bool((t[letters == ord("x")] == 0).all()) and bool((t[letters == ord("e")] == 1).all())
    tb = t[(letters == ord("n")) | (letters == ord("b"))].double()
    mean, var = 2 / 7, (2 * 5) / (7**2 * 8)
    assert float(tb.mean()) == pytest.approx(mean, abs=0.005)
    assert float(tb.var()) == pytest.approx(var, rel=0.05)


def test_default_batch_mollifies_two_thirds_and_targets_match_roles():
    x = _images(12).repeat(250, 1, 1, 1)
    labels = torch.arange(3000) % 10
    y = torch.nn.functional.one_hot(labels, 10).float()
    torch.manual_seed(0)
    m = Mollification(num_classes=10)
    xm, ym = m(x, y, torch.Generator().manual_seed(0))
    changed = (xm - x).flatten(1).abs().amax(1) > 1e-6
    assert changed.double().mean() == pytest.approx(2 / 3, abs=0.03)
    assert torch.equal(xm[~changed], x[~changed]) and torch.equal(ym[~changed], y[~changed])
    torch.testing.assert_close(ym.sum(1), torch.ones(3000))
    # each mollified target is y_t = gamma / K + (1 - gamma) y with gamma in [0, 1]
    gamma = (1 - ym.gather(1, labels[:, None]).squeeze(1)) * 10 / 9
    assert bool(((gamma >= -1e-6) & (gamma <= 1 + 1e-6)).all())


def test_la_adds_one_class_and_pure_noise_role():
    m = Mollification(num_classes=10, roles="e", label_mode="la")
    assert m.output_classes == 11
    x = _images(8)
    xm, ym = m(x, torch.nn.functional.one_hot(torch.arange(8), 10).float(), torch.Generator().manual_seed(0))
    assert ym.shape == (8, 11)
    torch.testing.assert_close(ym, torch.full((8, 11), 1 / 11))  # `e`: uniform target, t = 1
    assert abs(float(xm.mean())) < 0.1 and float(xm.std()) == pytest.approx(1.0, abs=0.05)


def test_bad_settings_rejected_with_their_messages():
    for roles in ("xq", "X", ""):
        with pytest.raises(ValueError, match=f"^roles must be letters of 'xnbe', got '{roles}'$"):
            Mollification(num_classes=10, roles=roles)
    message = "^unknown label mode 'lx'; choices: ls, ld, la, lm$"
    with pytest.raises(ValueError, match=message):
        Mollification(num_classes=10, label_mode="lx")
    with pytest.raises(ValueError, match=message):
        smooth_targets(torch.eye(4), torch.zeros(4), "lx", 4)


def test_roles_come_from_the_generator_and_t_from_the_global_one():
    m = Mollification(num_classes=10, roles="xnbe")
    draws = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        draws.append(m.sample(200, torch.device("cpu"), torch.Generator().manual_seed(0)))
    assert torch.equal(draws[0][0], draws[1][0])  # the roles: the same stream
    degraded = (draws[0][0] == ord("n")) | (draws[0][0] == ord("b"))
    assert not torch.equal(draws[0][1][degraded], draws[1][1][degraded])  # t ~ Beta: torch's global generator


def test_losses_on_soft_targets():
    logits = torch.randn(32, 10, generator=torch.Generator().manual_seed(0))
    labels = torch.randint(0, 10, (32,), generator=torch.Generator().manual_seed(1))
    onehot = torch.nn.functional.one_hot(labels, 10).float()
    torch.testing.assert_close(soft_cross_entropy(logits, onehot), torch.nn.functional.cross_entropy(logits, labels))
    torch.testing.assert_close(binary_cross_entropy(logits, onehot),
                               torch.nn.functional.binary_cross_entropy_with_logits(logits, onehot))
    # NCE: CE + log Z, Z = sum_k (g - f_k) / (log g - log f_k); uniform logits give Z = K g = 1
    uniform = torch.zeros(4, 10)
    torch.testing.assert_close(normalized_cross_entropy(uniform, onehot[:4]), torch.tensor(math.log(10)))
    assert torch.isfinite(normalized_cross_entropy(logits, onehot))


# value tests with chosen roles and t: the paper's equations written out, not the module's helpers

def _dct_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Heat dissipation written with torch-dct's 2-D transform: IDCT2(exp(-lambda sigma^2 / 2) DCT2(x))."""
    n = x.shape[-1]
    k = torch.arange(n, dtype=torch.float64) * math.pi / n
    decay = torch.exp(-(k[:, None] ** 2 + k[None] ** 2) * sigma**2 / 2)
    return torch_dct.idct_2d(decay * torch_dct.dct_2d(x.double())).float()


def _fixed_draws(monkeypatch, roles: str, t: list[float]) -> None:
    """Make Mollification.sample return these roles and times (the generator then only draws eps)."""
    letters = torch.tensor([ord(c) for c in roles])
    monkeypatch.setattr(Mollification, "sample", lambda self, batch, device, g: (letters, torch.tensor(t)))


def _mollify_fixed(monkeypatch, m: Mollification, roles: str, t: list[float], y=None):
    _fixed_draws(monkeypatch, roles, t)
    x = _images(len(roles))
    y = torch.nn.functional.one_hot(torch.arange(len(roles)) % 10, 10).float() if y is None else y
    xm, ym = m(x, y, torch.Generator().manual_seed(5))
    eps = torch.randn(x.shape, generator=torch.Generator().manual_seed(5))
    return x, eps, xm, ym


def test_each_role_gets_its_own_degradation_scale_and_target(monkeypatch):
    # t = 1/3: a = cos(pi / 6) = sqrt(3) / 2, s = 1/2, gamma_noise = sin^2(pi / 6) = 1/4;
    # t = 1/2 blurred: sigma = sqrt(0.3 x 32), gamma_blur = 1/2
    x, eps, xm, ym = _mollify_fixed(monkeypatch, Mollification(num_classes=10), "xnbe", [0.0, 1 / 3, 0.5, 1.0])
    assert torch.equal(xm[0], x[0]) and torch.equal(ym[0], torch.nn.functional.one_hot(torch.tensor(0), 10).float())
    torch.testing.assert_close(xm[1], math.sqrt(3) / 2 * x[1] + 0.5 * eps[1])
    torch.testing.assert_close(xm[2], _dct_blur(x[2], math.sqrt(0.3 * 32)), atol=1e-4, rtol=1e-4)
    assert torch.equal(xm[3], eps[3])  # `e`: pure noise with the uniform target
    expected = torch.tensor([[0.025] * 10] * 4)
    expected[0] = torch.nn.functional.one_hot(torch.tensor(0), 10).float()
    expected[1] = 0.25 / 10 + 0.75 * torch.nn.functional.one_hot(torch.tensor(1), 10).float()
    expected[2] = 0.5 / 10 + 0.5 * torch.nn.functional.one_hot(torch.tensor(2), 10).float()
    expected[3] = 0.1
    torch.testing.assert_close(ym, expected)


def test_label_powers_reach_each_schedule(monkeypatch):
    # npow = 2 at t = 1/3: (1/4)^2 = 1/16; bpow = 3 at t = 1/2: 1/8
    m = Mollification(num_classes=10, npow=2.0, bpow=3.0)
    _, _, _, ym = _mollify_fixed(monkeypatch, m, "nb", [1 / 3, 0.5])
    assert float(ym[0, 0]) == pytest.approx(1 / 160 + 15 / 16, rel=1e-5)
    assert float(ym[1, 1]) == pytest.approx(1 / 80 + 7 / 8, rel=1e-5)
    assert float(ym[1, 0]) == pytest.approx(1 / 80, rel=1e-5)


@pytest.mark.parametrize(("npow", "bpow", "gamma"), [(1.0, 1.0, 0.75), (2.0, 3.0, 1 - 0.75 * 0.875)])
def test_combined_variant_values(monkeypatch, npow, bpow, gamma):
    # t = 1/2: blurred at sigma = sqrt(9.6), then x sqrt(1/2) + eps sqrt(1/2);
    # gamma = 1 - (1 - (1/2)^npow)(1 - (1/2)^bpow): 3/4 with the default powers
    m = Mollification(num_classes=10, roles="n", combined=True, npow=npow, bpow=bpow)
    x, eps, xm, ym = _mollify_fixed(monkeypatch, m, "nx", [0.5, 0.0])
    torch.testing.assert_close(xm[0], math.sqrt(0.5) * (_dct_blur(x[0], math.sqrt(9.6)) + eps[0]), atol=1e-4, rtol=1e-4)
    assert torch.equal(xm[1], x[1])
    assert float(ym[0, 0]) == pytest.approx(gamma / 10 + 1 - gamma, rel=1e-6)
    assert float(ym[0, 5]) == pytest.approx(gamma / 10, rel=1e-6)


@pytest.mark.parametrize(("mode", "true_class", "other", "noise_class"), [
    ("ld", 0.75, 0.0, None),  # (1 - gamma) y: the mass lost, not spread
    ("la", 1.0, 0.0, 0.25),   # an extra noise class holding gamma, the label kept
    ("lm", 0.75, 0.0, 0.25),  # the noise class holds gamma, the label keeps 1 - gamma
])
def test_label_modes_at_known_gamma(monkeypatch, mode, true_class, other, noise_class):
    m = Mollification(num_classes=10, label_mode=mode)
    _, _, _, ym = _mollify_fixed(monkeypatch, m, "nx", [1 / 3, 0.0])  # gamma_noise(1/3) = 1/4
    assert ym.shape == (2, 10 if noise_class is None else 11)
    assert float(ym[0, 0]) == pytest.approx(true_class, rel=1e-6)
    assert float(ym[0, 3]) == pytest.approx(other, abs=1e-7)
    assert float(ym[1, 1]) == 1.0 and float(ym[1, 0]) == 0.0  # the clean sample keeps its one-hot label
    if noise_class is not None:
        assert float(ym[0, 10]) == pytest.approx(noise_class, rel=1e-6) and float(ym[1, 10]) == 0.0


def test_uniform_role_weights_and_seeded_generator(monkeypatch):
    """roles draw uniformly from the generator; without a generator a global-seeded one is made."""
    m = Mollification(num_classes=10, roles="xb")
    letters, t = m.sample(20_000, torch.device("cpu"), torch.Generator().manual_seed(1))
    assert float((letters == ord("b")).double().mean()) == pytest.approx(0.5, abs=0.015)
    assert bool((t[letters == ord("b")] > 0).all())
    x = _images(4)
    y = torch.nn.functional.one_hot(torch.arange(4), 10).float()
    torch.manual_seed(0)
    first = m(x, y)
    torch.manual_seed(0)
    second = m(x, y)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


def test_float64_batches_stay_float64_with_float64_noise(monkeypatch):
    _fixed_draws(monkeypatch, "ne", [0.5, 1.0])
    x = _images(2).double()
    xm, ym = Mollification(num_classes=10)(x, torch.nn.functional.one_hot(torch.arange(2), 10).double(),
                                           torch.Generator().manual_seed(5))
    eps = torch.randn(x.shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    assert xm.dtype == ym.dtype == torch.float64
    assert torch.equal(xm[1], eps[1])  # exactly: float32 draws differ from these by 1e-8
    torch.testing.assert_close(xm[0], math.sqrt(0.5) * (x[0] + eps[0]), atol=1e-6, rtol=0)  # t is float32


def test_blur_refuses_non_square_images_and_keeps_the_dtype():
    with pytest.raises(ValueError, match=r"^heat_blur needs square images, got \(4, 8\)$"):
        heat_blur(torch.zeros(1, 1, 4, 8), torch.zeros(1))
    x = _images(2).double()
    out = heat_blur(x, torch.tensor([0.5, 0.5]))
    assert out.dtype == torch.float64  # computed in float32 (the DCT matmuls), returned as the input's dtype
    torch.testing.assert_close(out, _dct_blur(x, math.sqrt(9.6)).double(), atol=1e-4, rtol=1e-4)
