#!/bin/sh
# azd postdeploy hook: once the code is deployed, wire the triggers to it (Event Grid subscriptions,
# the action group and the metric alerts) with a second provision. Later runs find CONNECT_TRIGGERS
# already true, so their single provision keeps everything wired.
set -eu
cd "$(dirname "$0")/../.."
if [ "$(azd env get-value CONNECT_TRIGGERS 2>/dev/null || true)" = "true" ]; then
  echo "connect-triggers: already wired (CONNECT_TRIGGERS=true)"
  exit 0
fi
azd env set CONNECT_TRIGGERS true
azd provision --no-prompt
