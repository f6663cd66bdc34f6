"""`dvc exp run -S ...` / `--queue`: the composed params are validated before DVC touches anything.

DVC's Hydra composition (`hydra.enabled` in .dvc/config) imports the `hydra_plugins` package of
the repository root before it composes conf/config.yaml into params.yaml (dvc/utils/hydra.py).
Hydra has no hook after composition, so this module wraps its override step: the overrides are
applied (to an open copy when Hydra refuses a key that conf/ lacks, which Hydra would report as
DVC's "unexpected error") and the result is validated as params.yaml would be; an invalid result
becomes DVC's error for the `--set-param` value, with the message of `mollify.config`. Checking
here, and not only in the pipeline's `validate` stage, matters: before it runs any stage,
`dvc exp run` removes the outputs of stages that the new params take out of dvc.yaml (e.g.
`-S 'datasets=[cifar11]'` drops `data@demo`).

A config group option that conf/ lacks (`-S profile=nosuch`) is refused the same way, naming the
folder and its options, instead of Hydra's "Could not find" that DVC reports as an unexpected error.
"""

from __future__ import annotations

import copy

from dvc.exceptions import InvalidArgumentError
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra.errors import ConfigCompositionException, MissingConfigException
from omegaconf import DictConfig, OmegaConf

from mollify.config import parse_params
from mollify.errors import MollifyError

SOURCE = "params.yaml as composed by dvc exp run"
_apply_overrides = ConfigLoaderImpl._apply_overrides_to_config


def _apply_and_validate(overrides: list, cfg: DictConfig) -> None:
    try:
        _apply_overrides(overrides, cfg)
        refused = None
    except ConfigCompositionException as e:
        refused, cfg = e, copy.deepcopy(cfg)
        OmegaConf.set_struct(cfg, False)
        _apply_overrides(overrides, cfg)
    params = OmegaConf.to_container(cfg)
    params.pop("hydra", None)
    try:
        parse_params(params, SOURCE)
    except MollifyError as e:
        raise InvalidArgumentError(str(e)) from None
    if refused is not None:
        raise refused


_load_configuration = ConfigLoaderImpl.load_configuration


def _load_or_name_the_missing_option(self: ConfigLoaderImpl, config_name: str | None, overrides: list[str], *args, **kwargs):
    try:
        return _load_configuration(self, config_name, overrides, *args, **kwargs)
    except MissingConfigException as e:
        missing = e.missing_cfg_file or ""
        group, _, option = missing.rpartition("/")
        if not group:
            raise
        choices = ", ".join(e.options or []) or "none"
        raise InvalidArgumentError(f"{SOURCE}: conf/{group}/ has no {option}.yaml, so `-S {group}={option}` names nothing. "
                                   f"Options of {group}: {choices} (conf/{group}/<option>.yaml); fix the spelling "
                                   f"or add conf/{group}/{option}.yaml.") from None


ConfigLoaderImpl._apply_overrides_to_config = staticmethod(_apply_and_validate)
ConfigLoaderImpl.load_configuration = _load_or_name_the_missing_option
