"""Triggers only: read the binding, call `shared`, log. No decisions here."""
