"""Rules every policy shares: which resources are never touched."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Exemptions:
    tag: str
    name_pattern: re.Pattern[str] | None = None


def exemption_reason(name: str, tags: Mapping[str, str], rules: Exemptions) -> str | None:
    """Why a resource is exempt, or None.

    A resource is exempt when it carries the exemption tag (case-insensitive key) with any value
    other than "false"/"no"/"0" — an empty value counts as exempt, because operators add the key
    alone to say "hands off" — or when its name matches the configured pattern.
    """
    for key, value in tags.items():
        if key.lower() == rules.tag.lower() and str(value).strip().lower() not in {"false", "no", "0"}:
            return f"exempt: tagged {key}={value}"
    if rules.name_pattern and rules.name_pattern.search(name):
        return f"exempt: name matches {rules.name_pattern.pattern!r}"
    return None
