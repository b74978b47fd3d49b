"""The one way the emulator changes moto: every patch names its target, and a
target moto no longer has stops the emulator at start-up, naming it.

moto's internals move between releases. A patch that silently assigned to a
renamed attribute would leave moto's old behaviour in place and the tests
passing against it; so `replace` refuses a target that does not exist, and
`add` (an API action moto lacks) refuses an owner that is not a class.
"""

from __future__ import annotations

import inspect
from typing import Any


class PatchTargetMissing(RuntimeError):
    """moto (or a library it uses) no longer has what the emulator patches."""


def _name(owner: Any, attribute: str) -> str:
    module = getattr(owner, "__module__", None) or getattr(owner, "__name__", "?")
    qualified = getattr(owner, "__qualname__", None) or getattr(owner, "__name__", repr(owner))
    if module == qualified:
        return f"{module}.{attribute}"
    return f"{module}.{qualified}.{attribute}"


def replace(owner: Any, attribute: str, value: Any) -> None:
    """Replaces `owner.attribute`, which must exist (on it or a base class)."""
    if not hasattr(owner, attribute):
        raise PatchTargetMissing(
            f"cannot patch {_name(owner, attribute)}: it does not exist in this version of moto "
            f"(renamed or removed?); update tests/emulator to match it"
        )
    setattr(owner, attribute, value)


def add_hook(owner: type, attribute: str, value: Any, *, consulted_by: Any) -> None:
    """Adds an optional hook moto looks for by name (`hasattr`): `consulted_by`,
    the moto function that looks, must still name it, or the hook would never
    be called."""
    source = inspect.getsource(consulted_by)
    if f'"{attribute}"' not in source and f"'{attribute}'" not in source:
        raise PatchTargetMissing(
            f"cannot hook {_name(owner, attribute)}: {_name(consulted_by, '')[:-1]} no longer looks it up "
            f"in this version of moto; update tests/emulator to match it"
        )
    add(owner, attribute, value)


def add(owner: type, attribute: str, value: Any) -> None:
    """Adds (or overrides) a method of a moto response class: an API action
    moto lacks, or one it answers unlike AWS."""
    if not isinstance(owner, type):
        raise PatchTargetMissing(f"cannot add {attribute} to {owner!r}: not a class")
    setattr(owner, attribute, value)
