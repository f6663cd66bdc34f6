import pytest
import torch

from mollify.augment import Mollification, BatchRecipe


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
