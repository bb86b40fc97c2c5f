"""The EVI unit's dashboard (domain.md §9): server-rendered pages under ``/ui`` that read
through the engine with the signed-in person's context. ``build_dashboard`` makes what
the pages share; ``ui_routes`` are added to the app's routes."""

from fhir_server.ui.routes import UI_PATH, Dashboard, build_dashboard, ui_routes

__all__ = ["UI_PATH", "Dashboard", "build_dashboard", "ui_routes"]
