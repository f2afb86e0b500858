"""Which VM family a quota usage row counts, in both ways Azure names a row."""

from __future__ import annotations

import pytest

from shared.adapters.aml import quota_family


@pytest.mark.parametrize(("value", "label", "family"), [
    # Azure's published example (Usage/list.json): the label in both fields.
    ("Standard DSv2 Family Cluster Dedicated vCPUs", "Standard DSv2 Family Cluster Dedicated vCPUs", "standardDSv2Family"),
    ("Standard NCv3 Family Cluster Dedicated vCPUs", "Standard NCv3 Family Cluster Dedicated vCPUs", "standardNCv3Family"),
    ("Standard NCASv3_T4 Family Cluster Dedicated vCPUs", "", "standardNCASv3_T4Family"),
    # The family's own name as the value, the label beside it.
    ("standardDSv2Family", "Standard DSv2 Family Cluster Dedicated vCPUs", "standardDSv2Family"),
    ("standardDSv2Family", "", "standardDSv2Family"),
    # Low-priority counts are not the dedicated quota, however the row is named.
    ("Standard DSv2 Family Cluster LowPriority vCPUs", "Standard DSv2 Family Cluster LowPriority vCPUs", None),
    ("standardDSv2Family", "Standard DSv2 Family Cluster LowPriority vCPUs", None),
    ("standardDSv2Family", "Standard DSv2 Family Cluster Low Priority vCPUs", None),
    # Rows that name no family.
    ("Total Cluster Dedicated Regional vCPUs", "Total Cluster Dedicated Regional vCPUs", None),
    ("", "", None),
])
def test_a_row_names_the_family_whose_dedicated_vcpus_it_counts(value: str, label: str, family: str | None) -> None:
    assert quota_family(value, label) == family
