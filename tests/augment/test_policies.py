"""The batched policies against torchvision's: every operation image for image, whole policies replayed
image by image with torchvision's kernels, and the drawn operations / magnitudes / signs / AugMix
weights against the distributions torchvision's policies define (chi-square and KS tests)."""

from collections import Counter

import numpy as np
import pytest
import torch
from scipy import stats
from torchvision.transforms import v2

from mollify.augment.policies import OPS, AugMix, AutoAugment, RandAugment, TrivialAugmentWide
from tests.conftest import DefaultDeviceWatch

OURS = {"trivaug": TrivialAugmentWide, "randaug": RandAugment, "autoaug": AutoAugment, "augmix": AugMix}
TORCHVISION = {"trivaug": v2.TrivialAugmentWide, "randaug": v2.RandAugment, "autoaug": v2.AutoAugment, "augmix": v2.AugMix}
BINS = {"trivaug": 31, "randaug": 31, "autoaug": 10, "augmix": 10}  # the num_bins each policy builds its space with
H = W = 32


def _images() -> torch.Tensor:
    """Noise, smooth images (real histograms and edges for equalize / sharpness) and a constant one
    (autocontrast's and equalize's degenerate case)."""
    g = torch.Generator().manual_seed(0)
    noise = torch.randint(0, 256, (3, 3, H, W), dtype=torch.uint8, generator=g)
    smooth = torch.nn.functional.avg_pool2d(noise.float(), 7, 1, 3).mul(1.6).sub(60).clamp(0, 255).to(torch.uint8)
    return torch.cat([noise, smooth, torch.full((1, 3, H, W), 77, dtype=torch.uint8)])


def _tv_op(tv: v2.Transform, image: torch.Tensor, op: str | None, magnitude: float) -> torch.Tensor:
    """torchvision's own kernel call for one op (what its policies' forward calls)."""
    if op is None:
        return image
    return tv._apply_image_or_video_transform(image, op, magnitude, interpolation=tv.interpolation, fill=tv._fill)


def _op_cases():
    for policy, cls in TORCHVISION.items():
        for op, (fn, signed) in cls._AUGMENTATION_SPACE.items():
            values = fn(BINS[policy], H, W)
            magnitudes = [0.0] if values is None else [float(v) for v in values]
            yield pytest.param(policy, op, magnitudes + [-m for m in magnitudes if signed], id=f"{policy}-{op}")


@pytest.mark.parametrize("policy, op, magnitudes", list(_op_cases()))
def test_each_op_equals_torchvision_for_every_magnitude(policy, op, magnitudes):
    """Exact: every op repeats torchvision's uint8 arithmetic (same float32 parameters, the same
    rounding of the grid sample, the same truncation of the blends)."""
    x = _images()
    tv = TORCHVISION[policy]()
    mode = OURS[policy].interpolation
    for m in magnitudes:
        ours = OPS[op](x, [m] * len(x), mode)
        expected = torch.stack([_tv_op(tv, image, op, m) for image in x])
        assert ours.dtype == torch.uint8 and torch.equal(ours, expected), (op, m)


def test_per_sample_magnitudes_in_one_call():
    """One call with a different magnitude per sample = torchvision per image (geometric + colour)."""
    x = _images()
    tv = v2.TrivialAugmentWide()
    for op in ("Rotate", "ShearX", "TranslateY", "Contrast", "Sharpness", "Posterize", "Solarize"):
        values = [float(v) for v in tv._AUGMENTATION_SPACE[op][0](31, H, W)]
        magnitudes = [values[(7 * i) % 31] * (-1) ** i for i in range(len(x))]
        if op in ("Posterize", "Solarize"):
            magnitudes = [abs(m) for m in magnitudes]
        expected = torch.stack([_tv_op(tv, image, op, m) for image, m in zip(x, magnitudes)])
        assert torch.equal(OPS[op](x, magnitudes, "nearest"), expected), op


@pytest.mark.parametrize("policy", ["trivaug", "randaug", "autoaug"])
def test_policy_equals_its_draws_replayed_with_torchvision(policy):
    ours, tv = OURS[policy](), TORCHVISION[policy]()
    x = _images().repeat(4, 1, 1, 1)
    out = ours(x, torch.Generator().manual_seed(3))
    rounds = ours.rounds(len(x), H, W, torch.Generator().manual_seed(3), x.device)
    for i, image in enumerate(x):
        for ops, magnitudes in rounds:
            image = _tv_op(tv, image, ops[i], magnitudes[i])
        assert torch.equal(out[i], image), i


def test_augmix_equals_its_draws_replayed_with_torchvision():
    """AugMix's mix: the image times its weight plus each chain's image times its weight, in float32,
    truncated to uint8, as in torchvision's AugMix.forward."""
    ours, tv = AugMix(), v2.AugMix()
    x = _images().repeat(2, 1, 1, 1)
    out = ours(x, torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)
    keep, weights = ours.weights(len(x), g, x.device)
    rounds = ours.chain(len(x) * ours.width, H, W, g, x.device)  # chain c of image i: row c * len(x) + i
    for i, image in enumerate(x):
        mix = keep[i] * image
        for c in range(ours.width):
            aug = image
            for ops, magnitudes in rounds:
                aug = _tv_op(tv, aug, ops[c * len(x) + i], magnitudes[c * len(x) + i])
            mix.add_(weights[i, c] * aug)
        assert torch.equal(out[i], mix.to(torch.uint8)), i


@pytest.mark.parametrize("policy", list(OURS))
def test_deterministic_for_a_seed_and_drawn_per_sample(policy):
    x = _images()[:1].expand(64, -1, -1, -1).contiguous()
    a = OURS[policy]()(x, torch.Generator().manual_seed(0))
    b = OURS[policy]()(x, torch.Generator().manual_seed(0))
    assert torch.equal(a, b)
    assert len({tuple(o.flatten().tolist()) for o in a}) > 16  # one image, many different outputs


# ---- the drawn distributions ----

def _space_distribution(space, values_of, bins: list[int] | None) -> dict:
    """P(op, signed magnitude) of one uniform draw over `space`: each op 1 / len(space); its
    magnitude bin uniform over `bins` (all bins when None); a signed magnitude negated w.p. 1/2."""
    p: dict = Counter()
    for op, (_, signed) in space.items():
        values = values_of(op)
        if values is None:
            p[(op, 0.0)] += 1 / len(space)
            continue
        chosen = range(len(values)) if bins is None else bins
        for i in chosen:
            for sign in ((1, -1) if signed else (1,)):
                p[(op, sign * values[i])] += 1 / len(space) / len(chosen) / (2 if signed else 1)
    return p


def _values(policy):
    cls = TORCHVISION[policy]

    def values_of(op):
        t = cls._AUGMENTATION_SPACE[op][0](BINS[policy], H, W)
        return None if t is None else [float(v) for v in t]
    return values_of


def _expected(policy: str) -> dict:
    """The distribution of one sample's whole draw, enumerated from torchvision's definitions."""
    space, values_of = TORCHVISION[policy]._AUGMENTATION_SPACE, _values(policy)
    if policy == "trivaug":
        return {(k,): v for k, v in _space_distribution(space, values_of, None).items()}
    if policy == "randaug":
        one = _space_distribution(space, values_of, [9])
        return {(a, b): pa * pb for a, pa in one.items() for b, pb in one.items()}
    if policy == "augmix":  # one step of a chain: severity 3 -> bins 0, 1, 2
        return {(k,): v for k, v in _space_distribution(space, values_of, [0, 1, 2]).items()}
    p: dict = Counter()  # autoaug: a sub-policy, each op applied with its probability, sign w.p. 1/2
    policies = v2.AutoAugment()._policies
    for sub in policies:
        per_position = []
        for op, prob, bin_ in sub:
            signed = space[op][1]
            m = 0.0 if bin_ is None else values_of(op)[bin_]
            outcomes = {(None, 0.0): 1 - prob} if prob < 1 else {}
            for sign in ((1, -1) if signed and m != 0 else (1,)):
                outcomes[(op, sign * m)] = outcomes.get((op, sign * m), 0) + prob / (2 if signed and m != 0 else 1)
            per_position.append(outcomes)
        for a, pa in per_position[0].items():
            for b, pb in per_position[1].items():
                p[(a, b)] += pa * pb / len(policies)
    return p


def _ours_draws(policy: str, n: int) -> Counter:
    g = torch.Generator().manual_seed(11)
    ours = OURS[policy]()
    if policy == "augmix":
        rounds = ours.chain(n, H, W, g, torch.device("cpu"))[:1]
    else:
        rounds = ours.rounds(n, H, W, g, torch.device("cpu"))
    draws = zip(*[list(zip(ops, [m + 0.0 for m in magnitudes])) for ops, magnitudes in rounds])
    if policy == "autoaug":
        draws = (tuple((op, m) if op is not None else (None, 0.0) for op, m in d) for d in draws)
    return Counter(draws)


def _torchvision_draws(policy: str, n: int) -> Counter:
    """torchvision's policy called n times on one image, its op calls recorded instead of applied."""
    torch.manual_seed(11)
    tv = TORCHVISION[policy]()
    calls: list = []
    tv._apply_image_or_video_transform = lambda image, op, m, **kw: (calls.append((op, m + 0.0)), image)[1]
    image = torch.zeros(3, H, W, dtype=torch.uint8)
    draws: Counter = Counter()
    for _ in range(n):
        calls.clear()
        if policy == "augmix":  # the first op of the first chain, as _ours_draws
            tv.mixture_width = 1
        tv(image)
        if policy == "autoaug":
            calls = calls + [(None, 0.0)] * (2 - len(calls))  # unapplied ops are not called: order below
        draws[tuple(calls[:1] if policy == "augmix" else calls)] += 1
    return draws


def _chi_square_p(counts: Counter, expected: dict) -> float:
    """Goodness-of-fit p-value; cells with fewer than 5 expected draws are pooled into one."""
    n = sum(counts.values())
    assert set(counts) <= set(expected), set(counts) - set(expected)
    keys = sorted(expected, key=repr)
    big = [k for k in keys if expected[k] * n >= 5]
    observed = [counts[k] for k in big] + [n - sum(counts[k] for k in big)]
    wanted = [expected[k] * n for k in big] + [n - sum(expected[k] * n for k in big)]
    if wanted[-1] < 1e-9:
        observed, wanted = observed[:-1], wanted[:-1]
    return stats.chisquare(observed, wanted).pvalue


@pytest.mark.parametrize("policy", list(OURS))
def test_drawn_ops_magnitudes_and_signs_match_torchvision(policy):
    """Ours over 60,000 samples fits the distribution enumerated from torchvision's definitions
    (joint over the rounds: RandAugment's two ops, AutoAugment's sub-policy outcome)."""
    assert _chi_square_p(_ours_draws(policy, 60_000), _expected(policy)) > 1e-3


@pytest.mark.parametrize("policy", ["trivaug", "randaug", "augmix"])
def test_the_enumerated_distribution_is_torchvisions(policy):
    """The expected distribution of the test above is the one torchvision's policy really draws."""
    assert _chi_square_p(_torchvision_draws(policy, 6_000), _expected(policy)) > 1e-3


def test_autoaugment_enumeration_is_torchvisions():
    """AutoAugment records only the ops it applies: compare the multiset of applied ops per call."""
    def unordered(counts):
        out: Counter = Counter()
        for draw, c in counts.items():
            out[tuple(sorted((d for d in draw if d[0] is not None), key=repr))] += c
        return out
    expected = unordered(Counter({k: v for k, v in _expected("autoaug").items()}))
    assert _chi_square_p(unordered(_torchvision_draws("autoaug", 6_000)), expected) > 1e-3


def test_chi_square_rejects_a_wrong_distribution():
    """The test can fail: TrivialAugment draws whose signs are never negative, or whose ops come
    from 13 of the 14, are rejected."""
    counts = _ours_draws("trivaug", 60_000)
    positive = Counter()
    for ((op, m),), c in counts.items():
        positive[((op, abs(m)),)] += c
    assert _chi_square_p(positive, _expected("trivaug")) < 1e-6
    no_identity = Counter({k: c for k, c in counts.items() if k[0][0] != "Identity"})
    assert _chi_square_p(no_identity, _expected("trivaug")) < 1e-6


@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_augmix_weights_are_beta_and_dirichlet(alpha):
    """Skip weight m ~ Beta(alpha, alpha); the chains share 1 - m by Dirichlet(alpha, ..., alpha), so
    each chain's share ~ Beta(alpha, 2 alpha) (KS tests); all weights sum to 1."""
    keep, chains = AugMix(alpha=alpha).weights(20_000, torch.Generator().manual_seed(2), torch.device("cpu"))
    assert torch.allclose(keep + chains.sum(1), torch.ones(20_000), atol=1e-6)
    assert stats.kstest(keep.numpy(), stats.beta(alpha, alpha).cdf).pvalue > 1e-3
    shares = (chains / (1 - keep)[:, None]).numpy()
    for c in range(3):
        assert stats.kstest(shares[:, c], stats.beta(alpha, 2 * alpha).cdf).pvalue > 1e-3
    assert stats.kstest(keep.numpy(), stats.beta(alpha + 1, alpha + 1).cdf).pvalue < 1e-6  # a wrong law is rejected


def test_augmix_chain_depth_is_uniform_on_1_to_3():
    depth = np.zeros(4_000, dtype=int)
    for ops, _ in AugMix().chain(4_000, H, W, torch.Generator().manual_seed(4), torch.device("cpu")):
        depth += np.array([op is not None for op in ops])
    assert stats.chisquare(np.bincount(depth, minlength=4)[1:], [4_000 / 3] * 3).pvalue > 1e-3


@pytest.mark.parametrize("depth", [1, 2])
def test_augmix_with_a_fixed_chain_depth_applies_exactly_that_many_ops_to_every_chain(depth):
    rounds = AugMix(chain_depth=depth).chain(500, H, W, torch.Generator().manual_seed(4), torch.device("cpu"))
    assert len(rounds) == depth and all(op is not None for ops, _ in rounds for op in ops)


def test_augmix_chain_depth_0_draws_the_depth_as_torchvision_does():
    rounds = AugMix(chain_depth=0).chain(500, H, W, torch.Generator().manual_seed(4), torch.device("cpu"))
    assert len(rounds) == 3 and {sum(op is not None for op in ops) for ops, _ in rounds} != {500}


def test_augmix_defaults_are_torchvisions():
    ours, theirs = AugMix(), v2.AugMix()
    assert (ours.severity, ours.width, ours.depth, ours.alpha) == (
        theirs.severity, theirs.mixture_width, theirs.chain_depth, theirs.alpha) == (3, 3, -1, 1.0)


def test_every_tensor_the_policies_make_is_placed_on_the_images_device():
    x = torch.randint(0, 256, (16, 3, H, W), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    with DefaultDeviceWatch() as watch:
        for policy in (TrivialAugmentWide(), RandAugment(), AutoAugment(), AugMix(), AugMix(chain_depth=2)):
            policy(x, torch.Generator().manual_seed(1))
    assert watch.unplaced == []


def test_the_release_augmix_draws_its_9_operations_with_continuous_levels_up_to_severity_3():
    from mollify.augment.policies import RELEASE_AUGMIX_OPS, ReleaseAugMix

    ops, magnitudes = ReleaseAugMix().chain(60_000, 32, 32, torch.Generator().manual_seed(0), torch.device("cpu"))[0]
    by_op = {}
    for op, m in zip(ops, magnitudes):
        by_op.setdefault(op, []).append(m)
    # uniform over the release's 9 (augmentations.py `augmentations`): never brightness, color, contrast, sharpness
    assert set(by_op) == set(RELEASE_AUGMIX_OPS)
    assert all(abs(len(v) / 60_000 - 1 / 9) < 0.01 for v in by_op.values())
    # level ~ U(0.1, 3): rotate int(3 level) degrees, P(0) = (1/3 - 0.1) / 2.9, P(k) = (1/3) / 2.9 for k = 1..8
    rotate = torch.tensor(by_op["Rotate"]).abs()
    assert set(rotate.tolist()) == set(range(9))
    assert float((rotate == 0).double().mean()) == pytest.approx((1 / 3 - 0.1) / 2.9, abs=0.01)
    assert float((rotate == 8).double().mean()) == pytest.approx((1 / 3) / 2.9, abs=0.01)
    assert float((torch.tensor(by_op["Rotate"]) < 0).double().mean()) == pytest.approx(0.5 * (1 - (1 / 3 - 0.1) / 2.9), abs=0.015)
    # posterize keeps 4 - int(0.4 level) bits: 4 for level < 2.5 (2.4 / 2.9 of the draws), else 3
    posterize = torch.tensor(by_op["Posterize"])
    assert set(posterize.tolist()) == {3.0, 4.0}
    assert float((posterize == 4).double().mean()) == pytest.approx(2.4 / 2.9, abs=0.01)
    # shear: a continuous |m| = 0.03 level, uniform on [0.003, 0.09)
    shear = torch.tensor(by_op["ShearX"], dtype=torch.float64).abs()
    assert 0.003 <= float(shear.min()) < 0.0035 and 0.0895 < float(shear.max()) < 0.09
    assert len(set(shear.tolist())) == len(shear) and float(shear.mean()) == pytest.approx(0.0465, abs=0.001)
    # solarize from 256 - int(25.6 level) in [180, 254]; translate int(level 32 / 30) in {0, .., 3} pixels
    assert {round(255 * m) for m in by_op["Solarize"]} == set(range(180, 255))
    assert {abs(m) for m in by_op["TranslateY"]} == {0.0, 1.0, 2.0, 3.0}


def test_the_release_augmix_mixes_in_float():
    from mollify.augment.policies import ReleaseAugMix

    x = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    out = ReleaseAugMix()(x, torch.Generator().manual_seed(2))
    assert out.dtype == torch.float32 and out.shape == x.shape and 0 <= float(out.min()) and float(out.max()) <= 255
    assert bool((out != out.floor()).any())  # not truncated to uint8 as torchvision's
