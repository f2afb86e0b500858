"""Composition root: the Function App and its blueprints. Nothing else (import time is cold start)."""

import azure.functions as func

from functions.alerts import bp as alerts
from functions.events import bp as events
from functions.rotate import bp as rotate
from functions.sweeps import bp as sweeps
from functions.worker import bp as worker

app = func.FunctionApp()
for blueprint in (sweeps, events, alerts, rotate, worker):
    app.register_functions(blueprint)
