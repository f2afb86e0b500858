from datetime import UTC, datetime
from shared.work import Kind, WorkItem
from local.stack import DEMO_VAULT
import json

def test_explore(world):
    s = world.settings(ARM_MAX_RETRIES="1")
    steps = []
    rot = world.rotator(s, checkpoint=lambda st: steps.append((st.kind.value, st.datastore, world.mark())))
    now = datetime.now(UTC)
    start = world.mark()
    item = WorkItem(Kind.ROTATE, DEMO_VAULT, "t1", {"secret": "stmldemo-key", "forced": True})
    rep = rot.run(item, now)
    for o in rep.outcomes:
        print(o.status, o.detail, o.action.reason)
    for e in world.emulator.journal(start):
        print(e["seq"], e["service"], e["method"], e["path"], e["query"], e["status"])
    print(steps)
    st = world.emulator.state()
    print(json.dumps(st["storage"], indent=1))
    print(json.dumps(st["ml"]["workspaces"][0]["datastores"], indent=1))
    print(json.dumps(st["keyvault"]["vaults"][0]["secrets"][0], indent=1, default=str))
    print(json.dumps(st["sinks"], indent=1, default=str)[:3000])
