"""Local HTTPS stand-in for the Azure services aml-autopilot calls (see ARCHITECTURE section 3).

Start it with ``python -m local.emulator`` or, in-process, ``local.emulator.server.start``.
"""
