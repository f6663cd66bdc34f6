"""Dataset registry: what each dataset is, where it comes from, how it is normalised."""

from __future__ import annotations

from dataclasses import dataclass

from mollify.errors import MollifyError


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    num_classes: int
    image_size: int
    mean: tuple[float, float, float] | None  # None: computed from the train split
    std: tuple[float, float, float] | None
    url: str | None = None
    md5: str | None = None


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

DATASETS: dict[str, DatasetInfo] = {
    "demo": DatasetInfo("demo", 10, 32, None, None),
    "cifar10": DatasetInfo(
        "cifar10", 10, 32, (0.491, 0.482, 0.446), (0.247, 0.243, 0.261),
        url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", md5="c58f30108f718f92721af3b95e74349a",
    ),
    "cifar100": DatasetInfo(
        "cifar100", 100, 32, (0.507, 0.487, 0.441), (0.267, 0.256, 0.276),
        url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", md5="eb9058c3a382ffc7106e4002c42a8d85",
    ),
    "tinyimagenet": DatasetInfo(
        "tinyimagenet", 200, 64, IMAGENET_MEAN, IMAGENET_STD,
        url="http://cs231n.stanford.edu/tiny-imagenet-200.zip", md5="90528d7ca1a48142e341f4ef8d21d0de",
    ),
}


@dataclass(frozen=True)
class CorruptedInfo:
    """An archive of an evaluation-only set (the official corrupted test sets of Hendrycks &
    Dietterich, ICLR 2019; SVHN): its canonical URL, its md5 (None where none is published) and the
    file name it is kept under (and fetched as from a mirror; default: the URL's)."""

    url: str
    md5: str | None
    filename: str | None = None


# Tiny-ImageNet-C: the fixed re-upload (zenodo 8206060) by default; TINY_C_RELEASES has the original too
CORRUPTED: dict[str, CorruptedInfo] = {
    "cifar10": CorruptedInfo("https://zenodo.org/record/2535967/files/CIFAR-10-C.tar", "56bf5dcef84df0e2308c6dcbcbbd8499"),
    "cifar100": CorruptedInfo("https://zenodo.org/record/3555552/files/CIFAR-100-C.tar", "11f0ed0f1191edbf9fa23466ae6021d3"),
    "tinyimagenet": CorruptedInfo("https://zenodo.org/record/8206060/files/Tiny-ImageNet-C.tar", "f9c9a9dbdc11469f0b850190f7ad8be1"),
}

# The two releases of Tiny-ImageNet-C (`corrupt.tiny_c_release`). The original (zenodo 2536630, which the
# mollification reference downloads: data/download-datasets.sh:8) has a frost folder of 1000 ImageNet
# classes instead of the 200 (hendrycks/robustness issue 60); no md5 of it is published in the code
# that uses it, so it is accepted unverified and the md5 it had is recorded in source.json.
TINY_C_RELEASES: dict[str, CorruptedInfo] = {
    "fixed": CORRUPTED["tinyimagenet"],
    "original": CorruptedInfo("https://zenodo.org/record/2536630/files/Tiny-ImageNet-C.tar", None,
                              filename="Tiny-ImageNet-C-original.tar"),
}


def archive_name(url: str, filename: str | None = None) -> str:
    """The file name an archive is kept under in the download folder and fetched as from a mirror:
    `filename`, or the last part of its URL."""
    return filename or url.rsplit("/", 1)[1]


def official_corrupted(name: str, tiny_c_release: str = "fixed") -> CorruptedInfo:
    """The official corrupted test set that `corrupt.source: official` reads for dataset `name`
    (Tiny-ImageNet-C: its `tiny_c_release`)."""
    if name not in CORRUPTED:
        raise MollifyError(f"dataset {name!r} has no official corrupted test set (have: {', '.join(CORRUPTED)}); use corrupt.source=generate.")
    return TINY_C_RELEASES[tiny_c_release] if name == "tinyimagenet" else CORRUPTED[name]


# SVHN's test split (Netzer et al. 2011), the far out-of-distribution set of CIFAR / TinyImageNet
# (md5 as torchvision.datasets.SVHN); a MATLAB file: X uint8 (32, 32, 3, N), y (N, 1) in 1..10, 10 = digit 0
SVHN_TEST = CorruptedInfo("http://ufldl.stanford.edu/housenumbers/test_32x32.mat", "eb5a983be6a315427106f1b164d9cef3")
