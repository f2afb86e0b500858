"""The inventory: every compute of a workspace, of every type, with what the rules say of it.

Nothing is dropped. Instances and clusters carry the rules' verdicts; every other compute type (as ARM
names it in ``properties.computeType``) is listed with ``left alone: <why>``, and a type this version
does not know is listed the same way. Serverless compute has no resource of its own: it shows as the
jobs that ran without a compute, with the cores of quota the active ones hold. Online deployments hold
quota too and are listed with the failed-deployment rule's verdict.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

from shared.model import Cluster, ComputeInstance, Job, OnlineDeployment, OtherCompute, Usage, Verdict, name_key, same_name

SERVERLESS = "Serverless"

# Why each compute type the autopilot does not manage is left alone (keys as ARM spells computeType).
LEFT_ALONE: Mapping[str, str] = {
    "Kubernetes": "Kubernetes compute (attached AKS or Arc cluster): its nodes are the cluster's, scaled by Kubernetes, not by AML",
    "AKS": "AKS inference cluster: its nodes are the AKS cluster's, scaled by AKS, not by AML",
    "VirtualMachine": "attached virtual machine: AML does not own its lifecycle; stop or resize it in Microsoft.Compute",
    "Databricks": "attached Azure Databricks workspace: its clusters are scaled and stopped by Databricks",
    "HDInsight": "attached HDInsight cluster: sized and billed by HDInsight, not by AML",
    "SynapseSpark": "attached Synapse Spark pool: paused and scaled by Synapse (auto-pause, auto-scale)",
    "DataFactory": "attached Data Factory: no nodes of its own to scale",
    "DataLakeAnalytics": "attached Data Lake Analytics account: no nodes of its own to scale",
}


@dataclass(frozen=True)
class Row:
    """One line of the inventory. ``nodes`` and ``cores`` are None when the type does not say."""

    name: str
    type: str
    state: str
    size: str
    nodes: int | None
    cores: int | None
    owner: str
    verdict: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def left_alone(compute_type: str) -> str:
    why = next((text for kind, text in LEFT_ALONE.items() if same_name(kind, compute_type)), None)
    return f"left alone: {why or f'compute type {compute_type} is not one this version knows: listed, never changed'}"


def _vcpus(size: str, sizes: Mapping[str, tuple[str, int]]) -> int | None:
    found = sizes.get(size.lower()) if size else None
    return found[1] if found else None


def _times(count: int | None, vcpus: int | None) -> int | None:
    return None if count is None or vcpus is None else count * vcpus


def _verdicts_on(name: str, verdicts: Iterable[Verdict]) -> str:
    """Each rule's decision on the compute and the actions it leads to (the reasons are the plan's own rows)."""
    said = [f"{v.rule}: {v.decision.value}" + (f" → {', '.join(a.kind.value for a in v.actions)}" if v.actions else "")
            for v in verdicts if name_key(v.target) == name_key(name)]
    return "; ".join(said) or "no rule applies"


def _family_state(size: str, sizes: Mapping[str, tuple[str, int]], usages: Sequence[Usage]) -> str:
    family = sizes.get(size.lower(), ("", 0))[0] if size else ""
    usage = next((u for u in usages if family and same_name(u.family, family)), None)
    return f" of {family} (family at {usage.current}/{usage.limit})" if usage else (f" of {family}" if family else "")


def inventory(computes: Sequence[ComputeInstance | Cluster | OtherCompute], jobs: Sequence[Job],
              deployments: Sequence[OnlineDeployment], verdicts: Sequence[Verdict], sizes: Mapping[str, tuple[str, int]],
              usages: Sequence[Usage]) -> list[Row]:
    """Every compute, every serverless job and every online deployment, each with its verdict or why it is left alone."""
    rows: list[Row] = []
    for c in computes:
        if isinstance(c, ComputeInstance):
            held = c.state.lower() not in ("stopped", "stopping", "createfailed", "deleting")
            rows.append(Row(c.name, "ComputeInstance", c.state, c.size, 1, _vcpus(c.size, sizes) if held else 0, c.owner or "",
                            _verdicts_on(c.name, verdicts)))
        elif isinstance(c, Cluster):
            state = f"{c.current_nodes} node(s), min {c.min_nodes} max {c.max_nodes}" + (f", {c.unusable_nodes} unusable" if c.unusable_nodes else "")
            rows.append(Row(c.name, "AmlCompute", state, c.size, c.current_nodes, _times(c.current_nodes, _vcpus(c.size, sizes)), "",
                            _verdicts_on(c.name, verdicts)))
        else:
            state = c.state + (" (attached)" if c.attached else "")
            rows.append(Row(c.name, c.compute_type, state, c.size, c.nodes, _times(c.nodes, _vcpus(c.size, sizes)), c.owner or "",
                            left_alone(c.compute_type)))
    for job in jobs:
        if job.compute is not None:
            continue
        size = job.instance_type or ""
        cores = _times(job.instance_count, _vcpus(size, sizes)) if job.active else 0
        holds = (f"holds {cores} cores{_family_state(size, sizes, usages)} while it runs" if job.active and cores
                 else "holds no quota now" if not job.active else "holds cores of an unknown size while it runs")
        rows.append(Row(job.name, SERVERLESS, job.status, size, job.instance_count, cores, job.owner or "",
                        f"left alone: a serverless job; AML gives its nodes back when it ends; {holds}"))
    for d in deployments:
        vcpus = _vcpus(d.instance_type, sizes)
        rows.append(Row(d.target, f"OnlineDeployment ({d.compute_type})", d.state, d.instance_type, d.instance_count,
                        _times(d.instance_count, vcpus) if d.managed else None, d.owner or "", _verdicts_on(d.target, verdicts)))
    return rows
