"""A local Azure Functions host for the Python v2 programming model.

It serves the URLs Core Tools serves (`/api/...`, `/runtime/webhooks/eventgrid`,
`/admin/functions/NAME`, `/admin/host/status`), builds function inputs with the azure-functions
library's own converters, runs queue triggers against Azurite and timers on NCRONTAB schedules,
so that the project's `function_app.py` runs unchanged here and under `func start`.

Modules: `settings` (local.settings.json, host.json, connections), `index` (import and index the
app), `bindings` (converters and data shapes), `invoker` (running an invocation), `eventgrid`,
`queues`, `timers`, `auth` (keys), `runtime` (the host), `server` (`start()` a host subprocess);
its HTTP listener is `local.httpwire`, shared with the emulator. Run it with
`python -m local.host --project DIR`.
"""
