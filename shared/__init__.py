"""aml-autopilot: keeps Azure Machine Learning workspaces healthy and cheap, unattended."""
