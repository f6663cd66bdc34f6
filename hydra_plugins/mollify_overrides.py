"""`dvc exp run -S key=value` with a key that params.yaml does not have: mollify's message.

DVC's Hydra composition (`hydra.enabled` in .dvc/config) imports the `hydra_plugins` package of
the repository root before it composes conf/config.yaml (dvc/utils/hydra.py). Hydra applies
overrides to a struct config, so a misspelled key fails inside Hydra, which DVC reports as an
"unexpected error" with advice to append the key with `+`. Hydra has no hook for that step, so
this module wraps it: when Hydra refuses the overrides, they are applied to an open copy and the
result is validated as params.yaml would be, and the message of `mollify.config` (the key, its
likely spelling) becomes DVC's error for the `--set-param` value.
"""

from __future__ import annotations

import copy

from dvc.exceptions import InvalidArgumentError
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra.errors import ConfigCompositionException
from omegaconf import DictConfig, OmegaConf

from mollify.config import parse_params
from mollify.errors import MollifyError

_apply_overrides = ConfigLoaderImpl._apply_overrides_to_config


def _apply_overrides_or_explain(overrides: list, cfg: DictConfig) -> None:
    try:
        _apply_overrides(overrides, cfg)
    except ConfigCompositionException as refused:
        loose = copy.deepcopy(cfg)
        OmegaConf.set_struct(loose, False)
        _apply_overrides(overrides, loose)
        params = OmegaConf.to_container(loose)
        params.pop("hydra", None)
        try:
            parse_params(params, "dvc exp run --set-param")
        except MollifyError as e:
            raise InvalidArgumentError(str(e)) from None
        raise refused


ConfigLoaderImpl._apply_overrides_to_config = staticmethod(_apply_overrides_or_explain)
