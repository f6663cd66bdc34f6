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


def _release_preact_resnet18(sd: dict, x: torch.Tensor) -> torch.Tensor:
    """The NFM release's PreActResNet-18 forward (erichson/NFM preresnet.py), written from its
    equations over a state dict in eval mode: out = relu(bn1(x)); shortcut = conv1x1(out) or out;
    out = conv2(relu(bn2(conv1(out)))) + shortcut; then avg_pool2d(out, 4) and the linear layer."""
    f = torch.nn.functional

    def bn(h, name):
        return f.batch_norm(h, sd[f"{name}.running_mean"], sd[f"{name}.running_var"], sd[f"{name}.weight"],
                            sd[f"{name}.bias"], training=False, eps=1e-5)

    out = f.conv2d(x, sd["stem.0.weight"], padding=1)
    for i in range(4):
        for j in range(2):
            block, stride = f"stages.{i}.{j}", (2 if i > 0 and j == 0 else 1)
            out = f.relu(bn(out, f"{block}.bn1"))
            projection = sd.get(f"{block}.shortcut.0.weight")
            shortcut = out if projection is None else f.conv2d(out, projection, stride=stride)
            out = f.conv2d(out, sd[f"{block}.conv1.weight"], stride=stride, padding=1)
            out = f.conv2d(f.relu(bn(out, f"{block}.bn2")), sd[f"{block}.conv2.weight"], padding=1) + shortcut
    out = f.avg_pool2d(out, 4).flatten(1)
    return f.linear(out, sd["head.2.weight"], sd["head.2.bias"])


@pytest.mark.parametrize(("name", "width"), [("preact_resnet18_nfm", 64), ("preact_wide_resnet18_nfm", 128)])
def test_nfm_preact_networks_are_the_releases(name, width):
    torch.manual_seed(0)
    model = create_model(name, 10).eval()
    for m in model.modules():  # non-trivial BN statistics, so that the shortcut's input matters
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 2), m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    assert model.stem[0].out_channels == width and model.head[-1].in_features == 8 * width
    x = torch.randn(2, 3, 32, 32)
    sd = model.state_dict()
    with torch.no_grad():
        expected = _release_preact_resnet18(sd, x)
        torch.testing.assert_close(model(x), expected, rtol=1e-4, atol=1e-4)
        if name == "preact_resnet18_nfm":  # ours, whose shortcut takes the raw x, is another network
            plain = create_model("preact_resnet18", 10).eval()
            plain.load_state_dict(sd)
            assert (plain(x) - expected).abs().max() > 1e-2


def test_mc_dropout_in_a_bottleneck_follows_the_3x3_conv():
    model = create_model("preact_resnet50", 10, mc_dropout=0.3).eval()
    block = model.stages[1][0]  # stride 2: the 3x3 conv halves the map
    seen = {}
    block.register_forward_pre_hook(lambda m, args: seen.__setitem__("x", args[0]))
    block.dropout.register_forward_pre_hook(lambda m, args: seen.__setitem__("dropout", args[0]))
    with torch.no_grad():
        model(torch.randn(2, 3, 32, 32))
        f = torch.nn.functional
        x = seen["x"]
        expected = f.relu(block.bn3(block.conv2(f.relu(block.bn2(block.conv1(f.relu(block.bn1(x))))))))
    assert seen["dropout"].shape == (2, 128, 16, 16)
    torch.testing.assert_close(seen["dropout"], expected)
