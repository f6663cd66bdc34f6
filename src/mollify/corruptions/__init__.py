"""Corrupted test sets (Hendrycks & Dietterich, ICLR 2019): batched torch reimplementations.

`corrupt(images, name, severity, seed)` takes uint8 (N, C, H, W) and returns the corrupted uint8
images; the severity table (32 px CIFAR or 64 px Tiny-ImageNet) is chosen by the image size.
Each function receives the float64 values k / 255, as the reference's `np.array(x) / 255.`, and
works in float32 where the reference does; outputs are truncated to uint8 like its `np.uint8(...)`.

Names are imported from their modules on first use (PEP 562): the names and groups (`names`, read by
the evaluation) without the corruption code (`generate`, `ops`, `blur`, `weather`), which only the
corrupt stage runs (mollify.dag).
"""

from mollify.lazy import names_from

_MODULES = {
    "CORRUPTIONS": "generate", "corrupt": "generate", "SEVERITY_TABLES": "tables",
    "GROUPS": "names", "STANDARD": "names", "EXTRA": "names", "group_of": "names",
}
__all__ = list(_MODULES)

__getattr__ = names_from(__name__, _MODULES)
