"""Filling in template files (ship/templates/, dev/templates/): a placeholder is `<<name>>`;
every placeholder of the file must be given a value, and every value must have its placeholder."""

from __future__ import annotations

import re
from pathlib import Path

_PLACEHOLDER = re.compile(r"<<([a-z_]+)>>")


def placeholders(template: Path) -> set[str]:
    """The names of the <<placeholders>> in the file `template`."""
    return set(_PLACEHOLDER.findall(template.read_text(encoding="utf-8")))


def fill(template: Path, /, **values: object) -> str:
    """The file `template`, each <<key>> in it replaced by str(values[key])."""
    text = template.read_text(encoding="utf-8")
    wanted = set(_PLACEHOLDER.findall(text))
    if wanted != set(values):
        raise ValueError(f"template {template.name}: placeholders {sorted(wanted)}, values given for {sorted(values)}")
    return _PLACEHOLDER.sub(lambda match: str(values[match.group(1)]), text)
