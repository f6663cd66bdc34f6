"""Noisy Feature Mixup: special cases, noise scales, mixing point (methods-nfm-softaug.md)."""

import pytest
import torch
import torch.nn.functional as F

from mollify.augment import NoisyFeatureMixup
from mollify.models import create_model
from tests.conftest import DefaultDeviceWatch


def _setup(n: int = 16):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, 32, 32, generator=g)
    y = F.one_hot(torch.randint(0, 10, (n,), generator=g), 10).float()
    return create_model("preact_resnet18", 10).eval(), x, y


def test_levels_zero_without_manifold_is_plain_input_mixup():
    model, x, y = _setup()
    nfm = NoisyFeatureMixup(alpha=1.0, add_level=0.0, mult_level=0.0, manifold=False)
    torch.manual_seed(0)
    logits, targets = nfm(model, x, y, torch.Generator().manual_seed(1))
    torch.manual_seed(0)  # replay: same lam, same permutation
    draws = nfm.draw(16, 1, x.device, torch.Generator().manual_seed(1))
    lam, perm = draws["lam"], draws["perm"]
    assert int(draws["k"]) == 0 and 0 < float(lam) < 1
    with torch.no_grad():
        torch.testing.assert_close(logits, model(lam * x + (1 - lam) * x[perm]))
    torch.testing.assert_close(targets, lam * y + (1 - lam) * y[perm])
    # the soft-target CE equals lam CE(y) + (1 - lam) CE(y[perm])
    ce = lambda t: -(t * F.log_softmax(logits, 1)).sum(1).mean()  # noqa: E731
    torch.testing.assert_close(ce(targets), lam * ce(y) + (1 - lam) * ce(y[perm]))


def test_noise_scales_follow_beta_2_5_and_the_levels():
    nfm = NoisyFeatureMixup(alpha=1.0, add_level=0.4, mult_level=0.2)
    torch.manual_seed(0)
    draws = [nfm.draw(8, 4, torch.device("cpu"), torch.Generator().manual_seed(i)) for i in range(4000)]
    for key in ("b_add", "b_mult"):
        b = torch.stack([d[key] for d in draws]).double()
        assert float(b.mean()) == pytest.approx(2 / 7, abs=0.01)
        assert float(b.var()) == pytest.approx(10 / (49 * 8), rel=0.1)
    lam = torch.stack([d["lam"] for d in draws]).double()
    assert float(lam.mean()) == pytest.approx(0.5, abs=0.02) and float(lam.var()) == pytest.approx(1 / 12, rel=0.1)
    # on a constant feature map of ones, mixing changes nothing: what is left is the noise
    h = torch.ones(4000, 8)
    fixed = {"lam": torch.tensor(0.5), "perm": torch.arange(4000), "k": torch.tensor(0),
             "b_add": torch.tensor(0.5), "b_mult": torch.tensor(0.5)}
    out = nfm.mix(h, fixed, torch.Generator().manual_seed(0))
    # mult ~ 0.1 U(-1, 1) + 1, add ~ 0.2 N(0, 1): mean 1, variance 0.1^2/3 + 0.2^2
    assert float(out.mean()) == pytest.approx(1.0, abs=0.01)
    assert float(out.var()) == pytest.approx(0.01 / 3 + 0.04, rel=0.05)


@pytest.mark.parametrize(("model_name", "points"), [("preact_resnet18", 4), ("wrn28_10", 3), ("small_resnet", 3)])
def test_mixing_point_is_uniform_over_input_and_all_stages_but_the_last(model_name, points):
    model = create_model(model_name, 10)
    nfm = NoisyFeatureMixup()
    assert nfm.mixing_points(model) == points
    assert NoisyFeatureMixup(manifold=False).mixing_points(model) == 1
    g = torch.Generator().manual_seed(0)
    ks = torch.stack([nfm.draw(4, points, torch.device("cpu"), g)["k"] for _ in range(4000)])
    counts = torch.bincount(ks, minlength=points).double() / 4000
    torch.testing.assert_close(counts, torch.full((points,), 1 / points, dtype=torch.float64), atol=0.03, rtol=0)


def test_mixing_at_a_stage_uses_the_hook_not_a_copy_of_the_network():
    model, x, y = _setup(8)
    draws = {"lam": torch.tensor(0.3), "perm": torch.arange(8).flip(0), "k": torch.tensor(2),
             "b_add": torch.tensor(0.0), "b_mult": torch.tensor(0.0)}

    class MixAfterStage2(NoisyFeatureMixup):
        def draw(self, *args: object) -> dict:
            return draws

    with torch.no_grad():
        logits, _ = MixAfterStage2(add_level=0.0, mult_level=0.0)(model, x, y, torch.Generator())
        h = model.stages[1](model.stages[0](model.stem(x)))
        h = 0.3 * h + 0.7 * h.flip(0)
        for stage in model.stages[2:]:
            h = stage(h)
        torch.testing.assert_close(logits, model.head(h))


def test_features_are_mixed_in_fp32_under_bf16_autocast():
    """lam rounded to bf16 would not be the lam of the targets: the mix is computed in fp32."""
    nfm = NoisyFeatureMixup(alpha=1.0, add_level=0.0, mult_level=0.0)
    h = torch.randn(8, 4, 5, 5).bfloat16()
    lam = torch.tensor(0.3)  # 0.30078125 in bf16
    draws = {"lam": lam, "perm": torch.arange(8).roll(1), "k": torch.tensor(1),
             "b_add": torch.tensor(0.5), "b_mult": torch.tensor(0.5)}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = nfm.mix(h, draws, torch.Generator().manual_seed(0))
    assert out.dtype == torch.float32
    hf = h.float()
    torch.testing.assert_close(out, 0.3 * hf + 0.7 * hf[draws["perm"]], rtol=0, atol=1e-6)


def test_alpha_zero_neither_mixes_nor_adds_noise():
    """alpha = 0 (NFM's "no mixup"): lam = 1 and the features are returned as they are, noise levels or not."""
    nfm = NoisyFeatureMixup(alpha=0.0, add_level=0.5, mult_level=0.5, manifold=False)
    with DefaultDeviceWatch() as watch:
        draws = nfm.draw(8, 1, torch.device("cpu"), torch.Generator().manual_seed(0))
    assert float(draws["lam"]) == 1.0 and watch.unplaced == []  # lam made on the device too
    h = torch.randn(8, 4, generator=torch.Generator().manual_seed(1))
    assert torch.equal(nfm.mix(h, draws, torch.Generator().manual_seed(2)), h)


def test_permutation_point_and_noise_come_from_the_generator_given():
    """perm then k are drawn from `g`; the mix is mult * (lam h + (1 - lam) h[perm]) + add with
    add = add_level b_add N(0, 1) and mult = 1 + mult_level b_mult U(-1, 1), both drawn from `g`
    (in that order): replayed here from a generator seeded alike, whatever torch's global one holds."""
    nfm = NoisyFeatureMixup(alpha=1.0, add_level=0.4, mult_level=0.2)
    torch.manual_seed(123)
    draws = nfm.draw(8, 3, torch.device("cpu"), torch.Generator().manual_seed(5))
    replay = torch.Generator().manual_seed(5)
    assert torch.equal(draws["perm"], torch.randperm(8, generator=replay))
    assert torch.equal(draws["k"], torch.randint(3, (), generator=replay))

    h = torch.randn(8, 4, 2, 2, generator=torch.Generator().manual_seed(1))
    draws = {"lam": torch.tensor(0.7), "perm": torch.arange(8).flip(0), "b_add": torch.tensor(0.3), "b_mult": torch.tensor(0.6)}
    torch.manual_seed(7)
    out = nfm.mix(h, draws, torch.Generator().manual_seed(9))
    replay = torch.Generator().manual_seed(9)
    add = 0.4 * 0.3 * torch.randn(h.shape, generator=replay)
    mult = 1 + 0.2 * 0.6 * (2 * torch.rand(h.shape, generator=replay) - 1)
    torch.testing.assert_close(out, mult * (0.7 * h + 0.3 * h.flip(0)) + add)


def test_the_forward_mix_uses_only_the_generator_given(monkeypatch):
    """With the Beta variates fixed, the whole NFM forward depends on `g` alone: torch's global
    generator, reseeded differently, changes nothing."""
    model, x, y = _setup(8)
    nfm = NoisyFeatureMixup(alpha=1.0, add_level=0.4, mult_level=0.2)
    draw = nfm.draw
    fixed = {"lam": torch.tensor(0.7), "b_add": torch.tensor(0.3), "b_mult": torch.tensor(0.6)}
    monkeypatch.setattr(NoisyFeatureMixup, "draw", lambda self, *args: {**draw(*args), **fixed})
    outs = []
    for global_seed in (0, 1):
        for k in range(nfm.mixing_points(model)):  # the input and each stage
            torch.manual_seed(global_seed)
            g = torch.Generator().manual_seed(0)
            while int(draw(8, nfm.mixing_points(model), x.device, g.clone_state())["k"]) != k:
                g.manual_seed(g.initial_seed() + 1)
            with torch.no_grad():
                outs.append(nfm(model, x, y, g)[0])
    half = len(outs) // 2
    for a, b in zip(outs[:half], outs[half:]):
        torch.testing.assert_close(a, b)
