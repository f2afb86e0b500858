"""Azure's naming rules for every name the autopilot takes from a payload, checked at intake.

A name that breaks its resource's rule cannot name a real resource, so it is refused before it
reaches a URL, a comparison or a log line: that is what stops ``../other-workspace/computes/x``
or ``x?api-version=…&y=`` in an alert dimension from steering a request. Every pattern starts
with a letter or digit and admits no ``/``, ``?``, ``#``, ``%`` or whitespace, so a valid name
is never a dot segment and never adds a path segment or a query.

Sources: azure-rest-api-specs (Microsoft.MachineLearningServices, Microsoft.KeyVault,
Microsoft.Storage) and Microsoft Learn "Naming rules and restrictions for Azure resources".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class NameRule:
    what: str
    pattern: re.Pattern[str]
    rule: str  # the rule in words, for the rejection line

    def fits(self, value: str) -> bool:
        """Whether the text `value` is a valid name of this kind: ``check`` says why not exactly when it is not."""
        return self.pattern.fullmatch(value) is not None

    def check(self, value: object) -> str | None:
        """Why `value` is not a valid name of this kind, or None when it is."""
        if not isinstance(value, str):
            return f"{self.what} is {type(value).__name__}, expected text"
        if not self.fits(value):
            return f"{self.what} {shown(value)} breaks Azure's naming rule ({self.rule})"
        return None


# AML computes: instances 3–24 characters, AmlCompute 3–32, other types 2–16; letters, digits and
# hyphens, starting with a letter (the REST examples also show underscores: `demo_cluster1_dsv2`).
COMPUTE = NameRule("compute name", re.compile(r"[A-Za-z][A-Za-z0-9_-]{1,31}", re.ASCII),
                   "2 to 32 letters, digits, hyphens or underscores, starting with a letter")
# AML job (run) names: letters, digits, underscores and hyphens, starting with a letter or digit,
# at most 255 characters (generated ones look like `sweet_apple_abc123`, `HD_<guid>_0`, GUIDs).
JOB = NameRule("run id", re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,254}", re.ASCII),
               "up to 255 letters, digits, underscores or hyphens, starting with a letter or digit")
# Key Vault: secret names 1–127 letters, digits and hyphens; vault names 3–24, starting with a
# letter, ending with a letter or digit, no consecutive hyphens.
SECRET = NameRule("secret name", re.compile(r"[0-9A-Za-z-]{1,127}", re.ASCII), "1 to 127 letters, digits or hyphens")
VAULT = NameRule("vault name", re.compile(r"(?!.*--)[A-Za-z][A-Za-z0-9-]{1,22}[A-Za-z0-9]", re.ASCII),
                 "3 to 24 letters, digits or hyphens, starting with a letter, ending with a letter or digit, no '--'")
SECRET_VERSION = NameRule("secret version", re.compile(r"[0-9A-Za-z]{1,64}", re.ASCII), "letters and digits")
# Quota families as usages and the Quota Utilization Percentage alert name them: `standardDSv2Family`,
# `standardNCADSA100v4Family`, and the totals (`Total Cluster Dedicated Regional vCPUs`).
VM_FAMILY = NameRule("VM family", re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.-]{0,79}", re.ASCII),
                     "up to 80 letters, digits, spaces, dots, underscores or hyphens")
STORAGE_ACCOUNT = NameRule("storage account name", re.compile(r"[a-z0-9]{3,24}", re.ASCII), "3 to 24 lower-case letters and digits")

# Online endpoints: 3–32 letters, digits and hyphens, starting with a letter; deployments: up to 32 letters,
# digits and hyphens, starting with a letter or digit (the CLI and REST examples: `blue`, `my-endpoint-1`).
ENDPOINT = NameRule("endpoint name", re.compile(r"[A-Za-z][A-Za-z0-9-]{2,31}", re.ASCII),
                    "3 to 32 letters, digits or hyphens, starting with a letter")
DEPLOYMENT = NameRule("deployment name", re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,31}", re.ASCII),
                      "up to 32 letters, digits or hyphens, starting with a letter or digit")

MAX_SHOWN = 320  # an ARM id is about 150 to 250 characters: it is shown whole, to the part that is wrong
_SHOWN_END = MAX_SHOWN // 2


def shown(value: object) -> str:
    """A value fit for a one-line log: in single quotes, escaped as JSON escapes text (control characters,
    quotes, backslashes, lone surrogates, and every character beyond ASCII, so that a letter that only
    looks like an ASCII one shows: a Cyrillic "р" reads ``\\u0440``); an escaped form longer than
    MAX_SHOWN is cut in the middle, keeping its start and its end."""
    if type(value) is str:
        held = _SHOWN.get(value)
        if held is not None:
            return held
    text = value if isinstance(value, str) else type(value).__name__
    # Bounded after escaping, where a character may take ten: a line of a few values stays a few kilobytes.
    escaped = json.dumps(text)[1:-1].replace("'", "\\'")  # JSON's escapes (ASCII only), and the quote it leaves
    line = f"'{escaped}'" if len(escaped) <= MAX_SHOWN else f"'{escaped[:_SHOWN_END]}'…'{escaped[-_SHOWN_END:]}'"
    if type(value) is str and len(value) <= 80:
        # The same few values (states, dimensions, rule names) are shown on line after line.
        if len(_SHOWN) >= 1024:
            _SHOWN.clear()
        _SHOWN[value] = line
    return line


_SHOWN: dict[str, str] = {}
