import numpy as np
import pytest
import torch

from mollify.augment import Mollification, BatchRecipe
from mollify.augment.batch import JSD_WEIGHT
from mollify.device import Normalize
from mollify.training.losses import augmix_jsd, soft_cross_entropy


def _batch(n: int = 64):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g)


@pytest.mark.parametrize("mix", ["mixup", "cutmix"])
def test_mix_then_mollify_in_that_order(mix):
    x, labels = _batch()
    mollification = Mollification(10, roles="n")
    torch.manual_seed(0)
    out_x, out_y = BatchRecipe(10, mix, mollification)(x, labels, torch.Generator().manual_seed(0))
    torch.manual_seed(0)  # the same draws, one step after the other
    mixed_x, mixed_y = BatchRecipe(10, mix)(x, labels, torch.Generator())
    expected_x, expected_y = mollification(mixed_x, mixed_y, torch.Generator().manual_seed(0))
    torch.testing.assert_close(out_x, expected_x)
    torch.testing.assert_close(out_y, expected_y)
    # torchvision's mix gives soft targets over at most two classes; mollification smooths them further
    assert torch.allclose(mixed_y.sum(1), torch.ones(64)) and int((mixed_y > 0).sum(1).max()) == 2
    assert torch.allclose(out_y.sum(1), torch.ones(64))
    assert bool((out_y.max(1).values <= mixed_y.max(1).values + 1e-6).all()) and (out_y > 0).all()


def test_one_hot_without_mix_and_noise_class_padding():
    x, labels = _batch(8)
    _, y = BatchRecipe(10)(x, labels, torch.Generator())
    assert torch.equal(y, torch.nn.functional.one_hot(labels, 10).float())
    targets = BatchRecipe(10, "mixup", Mollification(10, label_mode="la"))
    assert targets.output_classes == 11
    _, y = targets(x, labels, torch.Generator().manual_seed(0))
    assert y.shape == (8, 11)


def test_jsd_is_the_jensen_shannon_divergence_of_the_three_views():
    g = torch.Generator().manual_seed(0)
    logits = [3 * torch.randn(5, 7, generator=g) for _ in range(3)]
    p = [torch.softmax(z.double(), 1).numpy() for z in logits]
    m = sum(p) / 3
    # JS(p1, p2, p3) = (1/3) sum_i KL(p_i || m), per sample, averaged over the batch
    expected = np.mean(sum((pi * np.log(pi / m)).sum(1) for pi in p) / 3)
    assert float(augmix_jsd(*logits)) == pytest.approx(expected, rel=1e-5)
    assert float(augmix_jsd(logits[0], logits[0], logits[0])) == pytest.approx(0, abs=1e-7)


def test_augmix_jsd_views_and_loss():
    """Rows [clean; AugMix(base); AugMix(base)], loss CE(clean) + 12 JSD (AugMix paper, its cifar.py)."""
    normalize = Normalize((0.5,) * 3, (0.25,) * 3, torch.device("cpu"))
    images = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    seen = []

    def view(x, g):  # a stand-in AugMix: records its input, returns a different view each call
        seen.append(x.clone())
        return 255 - x if len(seen) == 1 else x // 2

    recipe = BatchRecipe(10, augmix_views=view)
    x, y = recipe.prepare(images, torch.arange(4), lambda x, g: x.flip(-1), normalize, torch.Generator())
    base = images.flip(-1)
    assert len(seen) == 2 and all(torch.equal(s, base) for s in seen)  # both views of the augmented image
    torch.testing.assert_close(x, torch.cat([normalize(base), normalize(255 - base), normalize(base // 2)]))
    logits = torch.randn(12, 10)
    expected = soft_cross_entropy(logits[:4], y) + 12 * augmix_jsd(logits[:4], logits[4:8], logits[8:])
    torch.testing.assert_close(recipe.loss(soft_cross_entropy, logits, y), expected)
    assert JSD_WEIGHT == 12


def test_diffaug_and_augmix_rows_each_get_their_loss():
    """Rows [clean; AugMix 1; AugMix 2; DiffAug]: CE(clean) + CE(DiffAug rows, the clean targets)
    + 12 JSD(the first three blocks) (DiffAug's diffaugmix.py)."""
    recipe = BatchRecipe(10, augmix_views=lambda x, g: x, diffaug=lambda x, g: x)
    logits, y = torch.randn(16, 10, generator=torch.Generator().manual_seed(0)), torch.eye(10)[:4]
    expected = (soft_cross_entropy(logits[:4], y) + soft_cross_entropy(logits[12:], y)
                + 12 * augmix_jsd(logits[:4], logits[4:8], logits[8:12]))
    torch.testing.assert_close(recipe.loss(soft_cross_entropy, logits, y), expected)


def test_recipe_passes_epochs_generator_and_model_on(monkeypatch):
    from mollify.augment import SoftAugmentation

    softaug = SoftAugmentation(10, final_epochs_without=2)
    recipe = BatchRecipe(10, softaug=softaug)
    recipe.start_epoch(7, 10)
    assert softaug.active  # epochs 0..7 of 10 with the crop on
    recipe.start_epoch(8, 10)
    assert not softaug.active

    calls = []
    recipe = BatchRecipe(10, nfm=lambda *args: calls.append(args) or ("logits", "targets"))
    model, x, y, g = object(), torch.zeros(2), torch.ones(2), torch.Generator()
    assert recipe.forward(model, x, y, g) == ("logits", "targets") and calls == [(model, x, y, g)]

    normalize = Normalize((0.5,) * 3, (0.25,) * 3, torch.device("cpu"))
    images = torch.randint(0, 256, (6, 3, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    recipe = BatchRecipe(10, mollification=Mollification(10))
    # mollification's t ~ Beta comes from torch's global generator (no Beta sampler takes one): fixed here
    monkeypatch.setattr(torch.distributions.Beta, "sample", lambda self, shape=(): torch.full(shape, 0.5))
    seen = []
    outs = []
    for global_seed in (0, 1):  # all randomness from the generator given: torch's global one changes nothing
        torch.manual_seed(global_seed)
        g = torch.Generator().manual_seed(3)
        augment = lambda x, gen: seen.append(gen is g) or x  # noqa: E731
        outs.append(recipe.prepare(images, torch.arange(6), augment, normalize, g))
    assert seen == [True, True]
    torch.testing.assert_close(outs[0], outs[1])
    given = []
    recipe = BatchRecipe(10, augmix_views=lambda x, gen: given.append(gen) or x, diffaug=lambda x, gen: given.append(gen) or x.float())
    recipe.prepare(images, torch.arange(6), lambda x, gen: x, normalize, g)
    assert len(given) == 3 and all(gen is g for gen in given)  # both AugMix views and the DiffAug rows


def test_recipe_with_soft_augmentation_returns_its_images_and_targets():
    from mollify.augment import SoftAugmentation

    x = torch.rand(5, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 1, 2, 3, 4])
    got = BatchRecipe(10, softaug=SoftAugmentation(10))(x, labels, torch.Generator().manual_seed(4))
    expected = SoftAugmentation(10)(x, labels, torch.Generator().manual_seed(4))
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b)
    _, y = BatchRecipe(10)(x, labels, torch.Generator())
    assert y.dtype == x.dtype and torch.equal(y, torch.eye(10)[:5])  # one-hot targets in the images' dtype
