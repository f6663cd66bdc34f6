"""Spatial smoothing blocks and MC dropout."""

import pytest
import torch

from mollify.models import create_model, is_stochastic
from mollify.models.smoothing import TanhBlur


def test_tanhblur_shape_and_identity_like_for_small_activations():
    x = torch.rand(2, 4, 8, 8) * 0.1  # small, positive: tanh(x / 10) * 10 ~ x, ReLU keeps it
    out = TanhBlur(10.0)(x)
    assert out.shape == (2, 4, 9, 9)  # the map grows by one pixel
    ref = torch.nn.functional.avg_pool2d(x, 2, stride=1, padding=1, count_include_pad=True)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-4)
    flat = torch.full((1, 1, 6, 6), 0.05)
    assert torch.allclose(TanhBlur()(flat)[..., 1:-1, 1:-1], flat[..., :5, :5], atol=1e-5)
    big = TanhBlur(10.0)(torch.full((1, 1, 4, 4), 1000.0))
    assert float(big.max()) <= 10.0  # tanh bounds activations by the temperature


@pytest.mark.parametrize("name", ["resnet18", "preact_resnet18", "small_resnet"])
def test_smoothing_blocks_after_each_stage(name):
    model = create_model(name, 10, smoothing=True).eval()
    assert all(isinstance(stage[-1], TanhBlur) for stage in model.stages)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert not is_stochastic(model)


def test_mc_dropout_passes_differ_and_their_mean_converges():
    torch.manual_seed(0)
    model = create_model("small_resnet", 10, mc_dropout=0.3).eval()
    assert is_stochastic(model)
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        a, b = torch.softmax(model(x), 1), torch.softmax(model(x), 1)
        assert not torch.allclose(a, b)  # dropout on at test time
        means = [torch.stack([torch.softmax(model(x), 1) for _ in range(n)]).mean(0) for n in (400, 400)]
    assert float((means[0] - means[1]).abs().max()) < 0.1 * float((a - b).abs().max()) + 1e-3
    plain = create_model("small_resnet", 10).eval()
    with torch.no_grad():
        assert torch.equal(plain(x), plain(x))  # no dropout where the model does not ask for it
