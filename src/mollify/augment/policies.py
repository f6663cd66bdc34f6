"""TrivialAugmentWide, RandAugment, AutoAugment and AugMix on a whole uint8 batch, drawn per sample.

torchvision's policies (`transforms/v2/_auto_augment.py`, the same distributions as
`transforms/autoaugment.py`) draw one operation per call; on a batch tensor that is one draw for
the whole batch, so the reference code calls them image by image. Here each policy draws every
sample's operations and magnitudes from torchvision's own augmentation spaces and policy tables
(ops uniform, magnitude bins uniform, sign negative with probability 1/2; AutoAugment: a uniform
sub-policy, each of its two ops applied with its probability; AugMix: Beta(alpha, alpha) skip weight,
Dirichlet(alpha) chain weights, chain depth uniform in {1, 2, 3}), then applies each operation once
to the subset of samples that drew it, with per-sample magnitudes. Each operation repeats the
arithmetic of torchvision's tensor kernel on uint8 (same float32 parameters, same rounding or
truncation), so the output equals torchvision's image for image (tests/augment/test_policies.py).
"""

from __future__ import annotations

import math
from collections import defaultdict
from functools import lru_cache, partial
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torchvision.transforms.v2 import AugMix as _TvAugMix
from torchvision.transforms.v2 import AutoAugment as _TvAutoAugment
from torchvision.transforms.v2 import AutoAugmentPolicy
from torchvision.transforms.v2 import RandAugment as _TvRandAugment
from torchvision.transforms.v2 import TrivialAugmentWide as _TvTrivialAugmentWide
from torchvision.transforms.v2 import functional as TF
from torchvision.transforms.v2.functional._geometry import _get_inverse_affine_matrix

# One round of a policy: the op name each sample applies (None: none) and its signed magnitude.
Round = tuple[list[Optional[str]], list[float]]
Space = dict[str, tuple[Callable[[int, int, int], Optional[torch.Tensor]], bool]]


# ---- operations: x uint8 (n, C, H, W), one magnitude per sample, torchvision's arithmetic ----

def _grid_sample(x: torch.Tensor, matrices: list[list[float]], mode: str) -> torch.Tensor:
    """torchvision's `_affine_grid` + `_apply_grid_transform` (fill None: zeros) with one inverse
    affine matrix per sample: float32 theta, the grid normalised after theta, rounded back to uint8."""
    n, _, h, w = x.shape
    theta = torch.tensor(matrices, dtype=torch.float32, device=x.device).reshape(n, 2, 3)
    xs = torch.linspace((1.0 - w) * 0.5, (w - 1.0) * 0.5, steps=w, device=x.device).view(1, 1, w)
    ys = torch.linspace((1.0 - h) * 0.5, (h - 1.0) * 0.5, steps=h, device=x.device).view(1, h, 1)
    t = theta.transpose(1, 2).div_(torch.tensor([0.5 * w, 0.5 * h], dtype=torch.float32, device=x.device))
    t = t.view(n, 3, 2, 1, 1)
    # (x, y, 1) . theta column j, summed in bmm's order (x t0 + y t1 + t2): the same floats as its
    # grid, without n tiny matrix products
    grid = torch.stack([xs * t[:, 0, j] + ys * t[:, 1, j] + t[:, 2, j] for j in range(2)], dim=-1)
    out = F.grid_sample(x.float(), grid, mode=mode, padding_mode="zeros", align_corners=False)
    return out.round_().to(x.dtype)


@lru_cache(maxsize=4096)  # bounded: the AugMix release's shear magnitudes are continuous
def _matrix(op: str, magnitude: float, h: int, w: int) -> list[float]:
    """The inverse affine matrix torchvision's `_apply_image_or_video_transform` builds for `op`."""
    corner = [-0.5 * w, -0.5 * h]  # center=[0, 0] (the top-left corner) in torchvision's centred frame
    if op == "ShearX":
        return _get_inverse_affine_matrix(corner, 0.0, [0.0, 0.0], 1.0, [math.degrees(math.atan(magnitude)), 0.0])
    if op == "ShearY":
        return _get_inverse_affine_matrix(corner, 0.0, [0.0, 0.0], 1.0, [0.0, math.degrees(math.atan(magnitude))])
    if op == "TranslateX":
        return _get_inverse_affine_matrix([0.0, 0.0], 0.0, [float(int(magnitude)), 0.0], 1.0, [0.0, 0.0])
    if op == "TranslateY":
        return _get_inverse_affine_matrix([0.0, 0.0], 0.0, [0.0, float(int(magnitude))], 1.0, [0.0, 0.0])
    # Rotate: rotate_image shifts the angle to [0, 360) and passes -angle to the affine matrix
    return _get_inverse_affine_matrix([0.0, 0.0], -(magnitude % 360), [0.0, 0.0], 1.0, [0.0, 0.0])


def _geometric(op: str, x: torch.Tensor, magnitudes: list[float], mode: str) -> torch.Tensor:
    """The affine op `op` (shear, translate, rotate) with a magnitude per sample."""
    h, w = x.shape[-2:]
    return _grid_sample(x, [_matrix(op, m, h, w) for m in magnitudes], mode)


def _per_sample(values: list[float], x: torch.Tensor) -> torch.Tensor:
    """Python floats -> float32 (n, 1, 1, 1), the cast torchvision's kernels apply to a scalar factor."""
    return torch.tensor(values, dtype=torch.float32, device=x.device).view(-1, 1, 1, 1)


def _blend(x: torch.Tensor, other: torch.Tensor, ratios: list[float]) -> torch.Tensor:
    """torchvision's `_blend` with a ratio per sample: x * r + other * (1 - r), clamped, truncated to uint8."""
    out = x.float().mul_(_per_sample(ratios, x))
    out.addcmul_(other.float().expand_as(out), _per_sample([1.0 - r for r in ratios], x))
    return out.clamp_(0, 255).to(x.dtype)


def _gray(x: torch.Tensor) -> torch.Tensor:
    """torchvision's grayscale of uint8 images for saturation and contrast (weights 0.2989 / 0.587 /
    0.114 in float32, floored)."""
    return TF.rgb_to_grayscale(x)


def _brightness(x: torch.Tensor, magnitudes: list[float], mode: str) -> torch.Tensor:
    return x.float().mul_(_per_sample([1.0 + m for m in magnitudes], x)).clamp_(0, 255).to(x.dtype)


def _color(x: torch.Tensor, magnitudes: list[float], mode: str) -> torch.Tensor:
    return _blend(x, _gray(x), [1.0 + m for m in magnitudes])


def _contrast(x: torch.Tensor, magnitudes: list[float], mode: str) -> torch.Tensor:
    return _blend(x, _gray(x).float().mean(dim=(-3, -2, -1), keepdim=True), [1.0 + m for m in magnitudes])


def _sharpness(x: torch.Tensor, magnitudes: list[float], mode: str) -> torch.Tensor:
    """torchvision's adjust_sharpness: blend the interior with the 3x3 smoothing (1s around a 5, over
    13) rounded to integers; the one-pixel border keeps its values. The smoothing is an integer sum
    s, rounded as (s + 6) // 13: s / 13 is never within 1/26 of a half, so this equals torchvision's
    rounded float32 conv2d, without a conv2d whose set-up cost on CPU returns with each subset size."""
    h, w = x.shape[-2:]
    xi = x.to(torch.int16)
    s = 4 * xi[..., 1:-1, 1:-1]
    for dy in range(3):
        for dx in range(3):
            s += xi[..., dy:dy + h - 2, dx:dx + w - 2]
    out = x.float()
    view = out[..., 1:-1, 1:-1]
    view.addcmul_(((s + 6) // 13).float().sub_(view), _per_sample([1.0 - (1.0 + m) for m in magnitudes], x))
    return out.clamp_(0, 255).to(x.dtype)


def _posterize(x: torch.Tensor, magnitudes: list[float], mode: str) -> torch.Tensor:
    masks = [255 if int(m) >= 8 else ((1 << int(m)) - 1) << (8 - int(m)) for m in magnitudes]
    return x & torch.tensor(masks, dtype=x.dtype, device=x.device).view(-1, 1, 1, 1)


def _solarize(x: torch.Tensor, magnitudes: list[float], mode: str) -> torch.Tensor:
    """v2's Solarize: threshold 255 * magnitude (its magnitudes are fractions), invert at or above it."""
    return torch.where(x.float() >= _per_sample([255 * m for m in magnitudes], x), x.bitwise_not(), x)


OPS: dict[str, Callable[[torch.Tensor, list[float], str], torch.Tensor]] = {
    **{op: partial(_geometric, op) for op in ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate")},
    "Brightness": _brightness, "Color": _color, "Contrast": _contrast, "Sharpness": _sharpness,
    "Posterize": _posterize, "Solarize": _solarize,
    "AutoContrast": lambda x, m, mode: TF.autocontrast(x),  # torchvision's kernels are per image already
    "Equalize": lambda x, m, mode: TF.equalize(x),
    "Invert": lambda x, m, mode: TF.invert(x),
    "Identity": lambda x, m, mode: x,
}


def apply_round(x: torch.Tensor, ops: list[Optional[str]], magnitudes: list[float], mode: str) -> torch.Tensor:
    """Sample i gets OPS[ops[i]] with magnitudes[i]: each op runs once, on the samples that drew it."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, op in enumerate(ops):
        if op is not None and op != "Identity":
            groups[op].append(i)
    if not groups:
        return x
    out = x.clone()
    for op, rows in groups.items():
        index = torch.tensor(rows, device=x.device)
        out.index_copy_(0, index, OPS[op](x.index_select(0, index), [magnitudes[i] for i in rows], mode))
    return out


# ---- draws ----

def _magnitude_table(space: Space, num_bins: int, h: int, w: int) -> dict[str, Optional[list[float]]]:
    """Each op's magnitudes as Python floats (torchvision's float(magnitudes[i]) of its float32 values)."""
    tables = {op: fn(num_bins, h, w) for op, (fn, _) in space.items()}
    return {op: None if t is None else [float(v) for v in t] for op, t in tables.items()}


def _uniform_op_round(space: Space, num_bins: int, bins: int | torch.Tensor, b: int, h: int, w: int,
                      g: torch.Generator, device: torch.device) -> Round:
    """One op per sample, uniform over `space`; magnitude bin `bins` (a fixed index or per-sample
    indices); a signed op's magnitude negated with probability 1/2."""
    names = list(space)
    op = torch.randint(len(names), (b,), generator=g, device=device)
    negative = torch.rand(b, generator=g, device=device) <= 0.5
    if isinstance(bins, int):
        bins = torch.full((b,), bins, dtype=torch.long, device=device)
    table = _magnitude_table(space, num_bins, h, w)
    ops, magnitudes = [], []
    for k, i, neg in zip(op.tolist(), bins.tolist(), negative.tolist()):  # one host transfer per tensor
        name = names[k]
        values, signed = table[name], space[name][1]
        m = 0.0 if values is None else values[i]
        ops.append(name)
        magnitudes.append(-m if signed and neg else m)
    return ops, magnitudes


class _Policy:
    """A policy as rounds of per-sample ops; `rounds` draws them, calling the policy applies them."""

    interpolation = "nearest"

    def rounds(self, b: int, h: int, w: int, g: torch.Generator, device: torch.device) -> list[Round]:
        raise NotImplementedError

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        for ops, magnitudes in self.rounds(x.shape[0], *x.shape[-2:], g, x.device):
            x = apply_round(x, ops, magnitudes, self.interpolation)
        return x


class TrivialAugmentWide(_Policy):
    """TrivialAugment (Mueller & Hutter, ICCV 2021), torchvision's TrivialAugmentWide: one op of 14,
    one of 31 magnitude bins, per sample."""

    space: Space = _TvTrivialAugmentWide._AUGMENTATION_SPACE

    def __init__(self, num_magnitude_bins: int = 31):
        self.num_bins = num_magnitude_bins

    def rounds(self, b, h, w, g, device):
        bins = torch.randint(self.num_bins, (b,), generator=g, device=device)
        return [_uniform_op_round(self.space, self.num_bins, bins, b, h, w, g, device)]


class RandAugment(_Policy):
    """RandAugment (Cubuk et al., CVPR-W 2020), torchvision's defaults: num_ops = 2 ops of 14, each
    uniform and independent, at magnitude bin 9 of 31."""

    space: Space = _TvRandAugment._AUGMENTATION_SPACE

    def __init__(self, num_ops: int = 2, magnitude: int = 9, num_magnitude_bins: int = 31):
        self.num_ops, self.magnitude, self.num_bins = num_ops, magnitude, num_magnitude_bins

    def rounds(self, b, h, w, g, device):
        return [_uniform_op_round(self.space, self.num_bins, self.magnitude, b, h, w, g, device)
                for _ in range(self.num_ops)]


class AutoAugment(_Policy):
    """AutoAugment (Cubuk et al., CVPR 2019), torchvision's ImageNet policy by default: one of 25
    sub-policies per sample, each of its two ops applied with its probability at its magnitude bin
    (of 10), a signed op negated with probability 1/2."""

    space: Space = _TvAutoAugment._AUGMENTATION_SPACE

    def __init__(self, policy: AutoAugmentPolicy = AutoAugmentPolicy.IMAGENET):
        self.policies = _TvAutoAugment(policy)._policies

    def rounds(self, b, h, w, g, device):
        chosen = torch.randint(len(self.policies), (b,), generator=g, device=device).tolist()
        table = _magnitude_table(self.space, 10, h, w)
        out = []
        for position in range(2):
            apply = (torch.rand(b, generator=g, device=device) <= torch.tensor(
                [self.policies[k][position][1] for k in chosen], device=device)).tolist()
            negative = (torch.rand(b, generator=g, device=device) <= 0.5).tolist()
            ops, magnitudes = [], []
            for k, applied, neg in zip(chosen, apply, negative):
                name, _, bin_ = self.policies[k][position]
                m = 0.0 if bin_ is None else table[name][bin_]
                ops.append(name if applied else None)
                magnitudes.append(-m if self.space[name][1] and neg else m)
            out.append((ops, magnitudes))
        return out


class AugMix(_Policy):
    """AugMix (Hendrycks et al., ICLR 2020), torchvision's AugMix (severity 3, width 3, depth 1-3,
    alpha 1, all ops, bilinear): per sample m ~ Beta(alpha, alpha) keeps the image, the rest is split
    over `mixture_width` chains by Dirichlet(alpha) weights; the float mix is truncated to uint8."""

    space: Space = _TvAugMix._AUGMENTATION_SPACE
    interpolation = "bilinear"

    def __init__(self, severity: int = 3, mixture_width: int = 3, chain_depth: int = -1, alpha: float = 1.0):
        self.severity, self.width, self.depth, self.alpha = severity, mixture_width, chain_depth, alpha

    def weights(self, b: int, g: torch.Generator, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(b,) weight of the image itself, (b, width) weights of the chains (they sum to 1 with it)."""
        m = torch._sample_dirichlet(torch.full((b, 2), self.alpha, device=device), generator=g)
        chains = torch._sample_dirichlet(torch.full((b, self.width), self.alpha, device=device), generator=g)
        return m[:, 0], chains * m[:, 1:]

    def chain(self, b, h, w, g, device) -> list[Round]:
        """b chains: up to 3 rounds, a chain's later rounds empty when its drawn depth is shorter."""
        depth = (torch.full((b,), self.depth, device=device) if self.depth > 0
                 else torch.randint(1, 4, (b,), generator=g, device=device)).tolist()
        rounds = []
        for step in range(max(depth)):
            bins = torch.randint(self.severity, (b,), generator=g, device=device)
            ops, magnitudes = _uniform_op_round(self.space, 10, bins, b, h, w, g, device)
            rounds.append(([op if step < d else None for op, d in zip(ops, depth)], magnitudes))
        return rounds

    def mix(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """The float mix of uint8 `x` with its chains."""
        b, h, w = x.shape[0], *x.shape[-2:]
        keep, chains = self.weights(b, g, x.device)
        # all chains as one batch (chain c of sample i is row c * b + i): each op runs once per round
        aug = x.repeat(self.width, 1, 1, 1)
        for ops, magnitudes in self.chain(b * self.width, h, w, g, x.device):
            aug = apply_round(aug, ops, magnitudes, self.interpolation)
        mix = keep.view(-1, 1, 1, 1) * x
        for i, chain in enumerate(aug.split(b)):
            mix.add_(chains[:, i].view(-1, 1, 1, 1) * chain)
        return mix

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        return self.mix(x, g).to(x.dtype)


# The AugMix release's 9 operations (google-research/augmix augmentations.py:141-144, `augmentations`; the 4
# that overlap the -C corruptions, color / contrast / brightness / sharpness, only with --all-ops), as our ops
RELEASE_AUGMIX_OPS = ("AutoContrast", "Equalize", "Posterize", "Rotate", "Solarize", "ShearX", "ShearY",
                      "TranslateX", "TranslateY")


def release_augmix_magnitude(op: str, level: float, negative: bool, size: int) -> float:
    """The magnitude of OPS[op] for the release's level in [0.1, severity) (augmentations.py:25-136):
    int_parameter(level, maxval) = int(level maxval / 10), float_parameter = level maxval / 10; posterize
    keeps 4 - int_parameter(level, 4) bits, solarize inverts from 256 - int_parameter(level, 256) on,
    rotate int_parameter(level, 30) degrees, shear float_parameter(level, 0.3), translate
    int_parameter(level, size / 3) pixels (the release: IMAGE_SIZE = 32), each of the last three
    negated when `negative` (drawn with probability 1/2)."""
    sign = -1.0 if negative else 1.0
    if op == "Posterize":
        return float(4 - int(level * 4 / 10))
    if op == "Solarize":
        return (256 - int(level * 256 / 10)) / 255  # our Solarize's threshold is 255 x magnitude
    if op == "Rotate":
        return sign * int(level * 30 / 10)
    if op in ("ShearX", "ShearY"):
        return sign * level * 0.3 / 10
    if op in ("TranslateX", "TranslateY"):
        return sign * int(level * (size / 3) / 10)
    return 0.0


class ReleaseAugMix(AugMix):
    """AugMix as its release trains with the JSD loss (google-research/augmix cifar.py:152-181, and
    the DiffAug release's AugMix + DiffAug training, oore-lab/diffaug training_scripts/diffaugmix.py:17
    and :101-130, which imports the same operations): per op a uniform choice of the 9 operations of
    RELEASE_AUGMIX_OPS and a continuous level ~ U(0.1, severity) (augmentations.py:52-53; severity 3,
    cifar.py's default; the DiffAug ImageNet script's is 1); chains of depth U{1, 2, 3}, width 3,
    Dirichlet(1) chain weights and a Beta(1, 1) skip weight; the mix stays float (the release mixes
    the normalised tensors), so the output is float in [0, 255]. Batched on tensors with torchvision's
    kernels (bilinear), not PIL: interpolation and autocontrast rounding may differ by a grey level."""

    def chain(self, b, h, w, g, device) -> list[Round]:
        depth = (torch.full((b,), self.depth, device=device) if self.depth > 0
                 else torch.randint(1, 4, (b,), generator=g, device=device)).tolist()
        rounds = []
        for step in range(max(depth)):
            op = torch.randint(len(RELEASE_AUGMIX_OPS), (b,), generator=g, device=device).tolist()
            level = (0.1 + (self.severity - 0.1) * torch.rand(b, generator=g, device=device, dtype=torch.float64)).tolist()
            negative = (torch.rand(b, generator=g, device=device) > 0.5).tolist()
            names = [RELEASE_AUGMIX_OPS[k] for k in op]
            magnitudes = [release_augmix_magnitude(n, lv, neg, w) for n, lv, neg in zip(names, level, negative)]
            rounds.append(([n if step < d else None for n, d in zip(names, depth)], magnitudes))
        return rounds

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        return self.mix(x, g)


POLICIES = {"trivaug": TrivialAugmentWide, "randaug": RandAugment, "autoaug": AutoAugment, "augmix": AugMix}
