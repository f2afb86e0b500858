"""Fixture Functions app for the dev host's tests: the composition root only."""

import azure.functions as func
from fixture_triggers import bp

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(bp)
