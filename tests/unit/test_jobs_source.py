"""Where a run's jobs come from: ARM's jobs list as raw JSON, reduced to what policy reads, and the
re-read before a write that reads only what is new — unless the list's order cannot be trusted."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from shared.adapters.aml import Workspace, job_from_arm
from shared.errors import Gone
from shared.jobs import HORIZON_MARGIN
from shared.settings import Settings
from tests.unit.builders import NOW, WS


def body(name: str, status: str | None, compute: str | None, minutes_ago: float, **props: Any) -> dict[str, Any]:
    at = (NOW - timedelta(minutes=minutes_ago)).isoformat().replace("+00:00", "Z")
    properties = {"computeId": f"{WS.id}/computes/{compute}" if compute else None, **props}
    if status is not None:
        properties["status"] = status
    return {"name": name, "properties": properties, "systemData": {"createdAt": at, "lastModifiedAt": at}}


class Pages:
    """ARM's jobs list as the adapter's ARM client yields it: item by item, counting what was read."""

    def __init__(self, bodies: list[dict[str, Any]]) -> None:
        self.bodies = bodies
        self.read = 0
        self.gets: list[str] = []

    def list(self, path: str, api_version: str = "", what: str = "", query: Any = None) -> Iterator[dict[str, Any]]:
        assert path.endswith("/jobs") and query == {"listViewType": "All"}
        for item in self.bodies:
            self.read += 1
            yield item

    def get(self, path: str, api_version: str = "", what: str = "") -> dict[str, Any]:
        name = path.rsplit("/", 1)[-1]
        self.gets.append(name)
        found = next((b for b in self.bodies if b["name"] == name), None)
        if found is None:
            raise Gone(name)
        return found


def workspace(bodies: list[dict[str, Any]]) -> tuple[Workspace, Pages]:
    pages = Pages(bodies)
    # ARM's list alone (JOBS_SOURCE=arm): what a sweep reads when run history cannot answer.
    settings = Settings.from_env({"ALLOWED_WORKSPACES": WS.id, "AzureWebJobsStorage": "UseDevelopmentStorage=true", "JOBS_SOURCE": "arm"})
    return Workspace(settings, WS, arm=pages), pages  # type: ignore[arg-type]


def test_a_job_without_a_status_is_unknown_and_so_active():
    job = job_from_arm(body("j", None, "ci", 5))
    assert job is not None and job.status == "Unknown" and job.active and job.runs_on("CI")


def test_a_pipeline_names_its_default_compute_and_each_steps_however_spelled():
    job = job_from_arm(body("p", "Running", "cpu", 5, jobType="Pipeline",
                            jobs={"a": {"computeId": "azureml:gpu"}, "b": {"compute": f"{WS.id}/computes/ci"}, "c": {}}))
    assert job is not None and job.computes == ("cpu", "gpu", "ci")


def test_a_job_time_without_a_zone_is_utc_and_the_re_read_still_reads_past_it():
    naive = body("naive", "Running", "ci", 1)
    naive["systemData"] = {"createdAt": (NOW - timedelta(minutes=1)).replace(tzinfo=None).isoformat()}
    ws, pages = workspace([naive, body("old", "Completed", "ci", 60)])
    assert [j.name for j in ws.active_jobs("ci", NOW - timedelta(minutes=2))] == ["naive"]
    assert job_from_arm(naive).created_at == NOW - timedelta(minutes=1) and pages.read == 2


def test_an_item_that_is_no_job_is_skipped():
    assert job_from_arm({"properties": {"status": "Running"}}) is None and job_from_arm("x") is None


def test_the_re_read_stops_at_the_first_job_older_than_the_horizon_margin():
    older = HORIZON_MARGIN.total_seconds() / 60 + 5
    ws, pages = workspace([body("new", "Queued", "ci", 1), body("old-1", "Completed", "ci", older),
                           *[body(f"old-{i}", "Running", "ci", older + i) for i in range(2, 50)]])
    assert [j.name for j in ws.active_jobs("ci", NOW - timedelta(minutes=2))] == ["new"]
    assert pages.read == 2


def test_a_list_out_of_order_is_read_to_its_end():
    ws, pages = workspace([body("a", "Completed", "ci", 1), body("b", "Completed", "ci", 5), body("c", "Completed", "ci", 0),
                           *[body(f"d-{i}", "Completed", "x", 100 + i) for i in range(20)], body("late", "Running", "ci", 500)])
    assert [j.name for j in ws.active_jobs("ci", NOW - timedelta(minutes=1))] == ["late"]
    assert pages.read == 24


def test_a_list_oldest_first_is_read_to_its_end_by_the_re_read():
    ws, pages = workspace([*[body(f"d-{i}", "Completed", "x", 100 - i) for i in range(20)], body("late", "Queued", "ci", 0)])
    assert [j.name for j in ws.active_jobs("ci", NOW - timedelta(minutes=1))] == ["late"]
    assert pages.read == 21


def test_a_job_active_at_the_listing_is_read_again_by_name_unless_its_page_was_read():
    ws, pages = workspace([body("new", "Completed", "cpu", 1), body("stale", "Completed", "x", 60),
                           body("long", "Paused", "ci", 30 * 24 * 60)])
    known = [job_from_arm(body("long", "Running", "ci", 30 * 24 * 60)), job_from_arm(body("gone", "Running", "ci", 9999))]
    busy = ws.active_jobs("ci", NOW - timedelta(minutes=1), [j for j in known if j])
    assert [(j.name, j.status) for j in busy] == [("long", "Paused")]
    assert pages.gets == ["long", "gone"] and pages.read == 2


def test_without_a_horizon_the_whole_list_is_read():
    ws, pages = workspace([body(f"j-{i}", "Completed", "ci", i) for i in range(30)] + [body("deep", "NotResponding", "CI", 9999)])
    assert [j.name for j in ws.active_jobs("ci")] == ["deep"] and pages.read == 31
