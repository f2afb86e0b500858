"""Rewrite the settings table of README.md and local.settings.sample.json from `shared.settings.CATALOGUE`.

    python -m local.settings_doc
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from shared.settings import CATALOGUE

ROOT = Path(__file__).resolve().parents[1]
HOST_VALUES = {"FUNCTIONS_WORKER_RUNTIME": "python", "AzureWebJobsFeatureFlags": "EnableWorkerIndexing"}
LOCAL_VALUES = {
    "ALLOWED_WORKSPACES": "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-ml-demo/providers/"
                          "Microsoft.MachineLearningServices/workspaces/mlw-demo",
    "ALLOWED_VAULTS": "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-ml-demo/providers/"
                      "Microsoft.KeyVault/vaults/kv-ml-demo",
    "AzureWebJobsStorage": "UseDevelopmentStorage=true",
}


def table() -> str:
    rows = ["| setting | default | meaning |", "| --- | --- | --- |"]
    for s in CATALOGUE:
        default = "(required)" if s.default is None else f"`{s.default}`"
        rows.append(f"| `{s.name}` | {default} | {s.help} |")
    return "\n".join(rows)


def main() -> None:
    readme = ROOT / "README.md"
    text = readme.read_text()
    text = re.sub(r"(<!-- settings:start -->\n).*?(\n<!-- settings:end -->)", lambda m: m.group(1) + table() + m.group(2),
                  text, flags=re.S)
    readme.write_text(text)
    values = dict(HOST_VALUES)
    for s in CATALOGUE:
        values[s.name] = LOCAL_VALUES.get(s.name, s.default or "")
    sample = ROOT / "local.settings.sample.json"
    sample.write_text(json.dumps({"IsEncrypted": False, "Values": values}, indent=2) + "\n")


if __name__ == "__main__":
    main()
