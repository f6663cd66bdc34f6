import pytest
import torch

from mollify.models import MODELS, create_model

# parameter counts of the standard CIFAR versions of these networks (10 classes)
EXPECTED_PARAMS = {
    "resnet18": 11_173_962,
    "preact_resnet18": 11_171_146,
    "wrn28_10": 36_479_194,
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_forward_shape_and_stages(name):
    model = create_model(name, 10).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 10)  # TinyImageNet size
    assert isinstance(model.stages, torch.nn.ModuleList) and len(model.stages) >= 3


@pytest.mark.parametrize("name", sorted(EXPECTED_PARAMS))
def test_parameter_counts_match_the_standard_networks(name):
    assert sum(p.numel() for p in create_model(name, 10).parameters()) == EXPECTED_PARAMS[name]


def test_unknown_model():
    with pytest.raises(KeyError, match="unknown model"):
        create_model("vgg", 10)


def test_preact_resnet50_is_the_bottleneck_3_4_6_3_network():
    model = create_model("preact_resnet50", 10)
    assert [len(stage) for stage in model.stages] == [3, 4, 6, 3]
    assert model.head[-1].in_features == 2048
    # no BN-ReLU before pooling, as the mollification reference's presnet.py
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.head)
