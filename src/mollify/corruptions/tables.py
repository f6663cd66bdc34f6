"""Severity parameters of the CIFAR-10-C (32 px) and Tiny-ImageNet-C (64 px) generators.

Transcribed from shared/reference/corruptions.md (hendrycks/robustness `make_cifar_c.py`,
`make_tinyimagenet_c.py`); index `severity - 1`.
"""

SEVERITY_TABLES: dict[str, dict[int, tuple]] = {
    "gaussian_noise": {32: (0.04, 0.06, 0.08, 0.09, 0.10), 64: (0.04, 0.08, 0.12, 0.15, 0.18)},
    "shot_noise": {32: (500, 250, 100, 75, 50), 64: (250, 100, 50, 30, 15)},
    "impulse_noise": {32: (0.01, 0.02, 0.03, 0.05, 0.07), 64: (0.01, 0.02, 0.05, 0.08, 0.14)},
    "speckle_noise": {32: (0.06, 0.1, 0.12, 0.16, 0.2), 64: (0.15, 0.2, 0.25, 0.3, 0.35)},
    "gaussian_blur": {32: (0.4, 0.6, 0.7, 0.8, 1.0), 64: (0.5, 0.75, 1.0, 1.25, 1.5)},
    "defocus_blur": {
        32: ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1)),
        64: ((0.5, 0.6), (1, 0.1), (1.5, 0.1), (2.5, 0.01), (3, 0.1)),
    },
    "contrast": {32: (0.75, 0.5, 0.4, 0.3, 0.15), 64: (0.4, 0.3, 0.2, 0.1, 0.05)},
    "brightness": {32: (0.05, 0.1, 0.15, 0.2, 0.3), 64: (0.1, 0.2, 0.3, 0.4, 0.5)},
    "saturate": {
        32: ((0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)),
        64: ((0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (30, 0.2)),
    },
    "jpeg_compression": {32: (80, 65, 58, 50, 40), 64: (65, 58, 50, 40, 25)},
    "pixelate": {32: (0.95, 0.9, 0.85, 0.75, 0.65), 64: (0.9, 0.8, 0.7, 0.6, 0.5)},
}


def severity_param(name: str, image_size: int, severity: int) -> tuple | float:
    table = SEVERITY_TABLES[name]
    if image_size not in table:
        raise ValueError(f"{name}: no severity table for {image_size}px images (have {sorted(table)})")
    if not 1 <= severity <= 5:
        raise ValueError(f"severity must be in 1..5, got {severity}")
    return table[image_size][severity - 1]
