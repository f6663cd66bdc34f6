"""Datasets as arrays: the embedded synthetic set, or CIFAR-10/100 and TinyImageNet from their archives.

Names are imported from their modules on first use (PEP 562): `prepared` (reading back what the data
stages wrote), which the training and evaluation stages import, without `prepare`, `download`,
`archives`, `corrupted` and `synthetic`, which only the data, corrupt and ood stages run (mollify.dag).
"""

from mollify.lazy import names_from

_MODULES = {
    "CORRUPTED": "datasets", "DATASETS": "datasets", "TINY_C_RELEASES": "datasets", "DatasetInfo": "datasets",
    "prepare_dataset": "prepare", "prepare_official_corrupted": "prepare",
    "DatasetMeta": "prepared", "load_split": "prepared", "load_meta": "prepared", "load_ood": "prepared",
}
__all__ = list(_MODULES)

__getattr__ = names_from(__name__, _MODULES)
