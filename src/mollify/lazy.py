"""Packages that import their names on first use (PEP 562): a stage that imports one module of such a
package runs, and depends on (mollify.dag reads each package's `_MODULES` table), only the modules
whose names it uses."""

from collections.abc import Callable
from importlib import import_module
from typing import Any


def names_from(package: str, modules: dict[str, str]) -> Callable[[str], Any]:
    """The module `__getattr__` of `package`: `name` is imported from `package.<modules[name]>`."""

    def __getattr__(name: str) -> Any:
        if name not in modules:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(f"{package}.{modules[name]}"), name)

    return __getattr__
