"""Messages people act on: Teams Adaptive Cards and Slack Block Kit, the studio link, the time left, the owner mentioned."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest

from shared.actions import MarkFailedDeployment, MarkIdle, ScaleCluster, StopInstance
from shared.messages import render, studio_link
from shared.model import Action, Outcome, ResourceId, Status

WS = ResourceId.parse("/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/mlw-demo")
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"

# The Adaptive Card 1.4 schema as Microsoft publishes it, cut to the elements these cards use (source in the file).
CARD_SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "schemas" / "adaptive-card-1.4.excerpt.json").read_text())
CARD_VALIDATOR = jsonschema.Draft6Validator(CARD_SCHEMA)


def valid_card(card: dict) -> None:
    """The card without Teams' own `msteams` extension is an Adaptive Card 1.4; the extension is Teams' documented shape."""
    rest = {k: v for k, v in card.items() if k != "msteams"}
    CARD_VALIDATOR.validate(rest)
    extension = card.get("msteams", {})
    assert set(extension) <= {"width", "entities"}
    for entity in extension.get("entities", []):
        assert set(entity) == {"type", "text", "mentioned"} and entity["type"] == "mention"
        assert set(entity["mentioned"]) == {"id", "name"}


def test_the_vendored_card_schema_refuses_what_adaptive_cards_1_4_refuse():
    card = {"type": "AdaptiveCard", "version": "1.4", "body": [{"type": "FactSet", "facts": [{"name": "a", "value": "b"}]}]}
    with pytest.raises(jsonschema.ValidationError):
        CARD_VALIDATOR.validate(card)
    with pytest.raises(jsonschema.ValidationError):
        CARD_VALIDATOR.validate({"type": "AdaptiveCard", "version": "1.4", "body": [{"type": "TextBlock", "text": "x", "weight": "heavy"}]})
    CARD_VALIDATOR.validate({"type": "AdaptiveCard", "version": "1.4", "body": [{"type": "TextBlock", "text": "x", "weight": "Bolder"}]})


def warning(owner: str | None = "alice@contoso.com", target: str = "ci-alice") -> Outcome:
    return Outcome(Action(MarkIdle(), WS, target, "idle 5h (threshold 2h)", owner=owner), Status.DONE, "idle: stops unless used", NOW)


def done_stop() -> Outcome:
    return Outcome(Action(StopInstance(), WS, "ci-frank", "idle 8h", owner="frank@contoso.com"), Status.DONE, "stop ci-frank: verified", NOW)


def card_of(message: dict) -> dict:
    (attachment,) = message["attachments"]
    assert message["type"] == "message" and attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    return attachment["content"]


def test_the_studio_link_names_the_compute_workspace_and_tenant():
    assert studio_link(done_stop(), TENANT) == (
        "https://ml.azure.com/compute/ci-frank/details?wsid=/subscriptions/s/resourceGroups/rg/providers/"
        f"Microsoft.MachineLearningServices/workspaces/mlw-demo&tid={TENANT}")


def test_a_teams_warning_is_an_adaptive_card_1_4_mentioning_the_owner_with_the_time_left_and_the_studio_link():
    card = card_of(render("teams", warning(), tenant=TENANT, grace=timedelta(minutes=60), warning=True))
    valid_card(card)
    assert card["version"] == "1.4"
    (mention,) = card["msteams"]["entities"]
    assert mention == {"type": "mention", "text": "<at>alice@contoso.com</at>",
                       "mentioned": {"id": "alice@contoso.com", "name": "alice@contoso.com"}}
    assert any(mention["text"] in block.get("text", "") for block in card["body"])
    facts = {f["title"]: f["value"] for f in card["body"][-1]["facts"]}
    assert facts["Time left"] == "1h (after 2026-11-26 13:00Z, unless it is used)"
    assert facts["Reason"] == "idle 5h (threshold 2h)" and facts["Outcome"] == "done"
    assert card["actions"][0]["url"].startswith("https://ml.azure.com/compute/ci-alice/details?wsid=")


def test_a_teams_card_for_a_done_action_has_no_mention_and_no_time_left():
    card = card_of(render("teams", done_stop(), tenant=TENANT))
    valid_card(card)
    assert "entities" not in card["msteams"]
    assert "Time left" not in {f["title"] for f in card["body"][-1]["facts"]}


@pytest.mark.parametrize("owner", ["</at><at>everyone", "[click](https://evil.example)", "bob@contoso.com\n<b>x</b>",
                                   "bob@contoso.com\n", {"upn": "bob@contoso.com"}])
def test_an_owner_that_is_no_upn_is_named_but_never_mentioned_and_never_markup(owner):
    card = card_of(render("teams", warning(owner), grace=timedelta(minutes=60), warning=True))
    valid_card(card)
    assert "entities" not in card["msteams"]
    text = str(card["body"])
    assert "<at>" not in text and "[click]" not in text and "<b>" not in text


def test_a_slack_message_is_block_kit_within_slacks_limits_with_the_reason_time_left_and_a_studio_button():
    message = render("slack", warning(), tenant=TENANT, grace=timedelta(minutes=60), warning=True)
    assert message["text"].startswith("Idle compute ci-alice in mlw-demo")
    kinds = [b["type"] for b in message["blocks"]]
    assert kinds == ["header", "section", "context", "actions"]
    header, section, context, actions = message["blocks"]
    assert header["text"]["type"] == "plain_text" and len(header["text"]["text"]) <= 150
    assert section["text"]["text"] == "*Reason:* idle 5h (threshold 2h)" and len(section["fields"]) <= 10
    assert all(len(f["text"]) <= 2000 for f in section["fields"])
    assert context["elements"][0]["text"] == "*Time left:* 1h (after 2026-11-26 13:00Z, unless it is used)"
    (button,) = actions["elements"]
    assert button["url"].startswith("https://ml.azure.com/compute/ci-alice/details") and len(button["text"]["text"]) <= 75


def test_slack_text_from_azure_is_escaped_as_slack_asks():
    outcome = Outcome(Action(ScaleCluster(0, 4, 1800), WS, "cpu-cluster", "<!channel> & <https://evil|x>"), Status.DONE, "ok", NOW)
    section = render("slack", outcome)["blocks"][1]
    assert section["text"]["text"] == "*Reason:* &lt;!channel&gt; &amp; &lt;https://evil|x&gt;"


def test_the_text_format_is_the_line_and_the_fields_as_before():
    body = render("text", done_stop())
    assert body["text"] == "[aml-autopilot] done: stop-instance mlw-demo/ci-frank — idle 8h" and body["target"] == "ci-frank"


def failed_deployment(deletable: bool = True) -> Outcome:
    return Outcome(Action(MarkFailedDeployment(deletable=deletable), WS, "api/deployments/canary", "failed; status code 502",
                          owner="dave@contoso.com"), Status.DONE, "failed deployment: told", NOW)


def test_a_failed_deployments_owner_is_told_it_failed_and_will_be_deleted_unless_it_recovers_not_that_a_compute_looks_idle():
    card = card_of(render("teams", failed_deployment(), grace=timedelta(hours=24), warning=True))
    valid_card(card)
    text = json.dumps(card)
    assert "idle" not in text.lower() and "compute" not in text.lower() and "stopped" not in text
    assert card["body"][0]["text"] == "Failed online deployment api/deployments/canary in mlw-demo: it will be deleted unless it recovers"
    assert card["body"][1]["text"] == "<at>dave@contoso.com</at>, your online deployment api/deployments/canary failed."
    facts = {f["title"]: f["value"] for f in card["body"][-1]["facts"]}
    assert facts["Deployment"] == "api/deployments/canary"
    assert facts["Time left"] == "1d (after 2026-11-27 12:00Z, unless it recovers or receives traffic)"


def test_the_owner_of_a_failed_deployment_that_receives_traffic_is_never_told_it_will_be_deleted():
    message = render("slack", failed_deployment(deletable=False), grace=None, warning=True)
    assert message["text"] == ("Failed online deployment api/deployments/canary in mlw-demo: it is not deleted "
                               "(it receives traffic or runs on Kubernetes)")
    assert "deleted unless" not in json.dumps(message) and "stopped" not in json.dumps(message)


@pytest.mark.parametrize("filler", ["x", "é", "<", "😀"])
def test_a_teams_card_stays_within_teams_28_kb_message_limit_whatever_the_reason_and_detail_hold(filler):
    long = filler * 60_000
    outcome = Outcome(Action(MarkIdle(), WS, "ci-alice", long, owner="alice@contoso.com"), Status.FAILED, long, NOW)
    message = render("teams", outcome, grace=timedelta(minutes=60), warning=True)
    valid_card(card_of(message))
    assert len(json.dumps(message).encode()) < 28 * 1024
    facts = {f["title"]: f["value"] for f in card_of(message)["body"][-1]["facts"]}
    assert facts["Reason"].endswith("…") and len(facts["Reason"]) > 1000 // 12


def test_an_owner_that_is_not_text_is_routed_to_no_owner_webhook_and_breaks_nothing():
    from shared.adapters.notify import Notifier
    from shared.settings import Settings

    settings = Settings.from_env({"ALLOWED_WORKSPACES": WS.id, "AzureWebJobsStorage": "UseDevelopmentStorage=true",
                                  "NOTIFY_OWNER_WEBHOOKS": '{"bob@contoso.com": "https://hooks.example/bob"}'})
    notifier = Notifier(settings)
    assert notifier.reaches(" BOB@contoso.com ") and not notifier.reaches({"upn": "bob@contoso.com"})
    assert not notifier.reaches(["bob@contoso.com"]) and not notifier.reaches(None)


def test_a_compute_name_with_underscores_is_shown_as_named_in_a_teams_card_and_only_styling_underscores_go():
    card = card_of(render("teams", warning(target="gpu_train_01"), grace=timedelta(minutes=60), warning=True))
    valid_card(card)
    text = json.dumps(card["body"])
    assert "gpu_train_01" in text
    styled = card_of(render("teams", Outcome(Action(MarkIdle(), WS, "ci-alice", "_idle_ for __5h__", owner=None),
                                             Status.DONE, "idle", NOW), grace=timedelta(minutes=60), warning=True))
    assert "_idle_" not in json.dumps(styled["body"]) and "__5h__" not in json.dumps(styled["body"])
