"""The live dashboard: the usage log as a local web page, with calls appearing as they land.

>>> from orkestra.dashboard import run_dashboard
>>> run_dashboard(port=8333)  # doctest: +SKIP  (what ``orkestra dashboard`` runs)

or, inside a program, ``orkestra.set_analytics(True)``. The page reads everything from the usage
log (so a restart loses nothing, and calls from other processes show too) and loads nothing
from anywhere but this server. Needs ``pip install 'orkestra-router[dashboard]'``.
"""

from __future__ import annotations

try:
    import starlette  # noqa: F401
    import uvicorn  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError(
        "the dashboard needs starlette and uvicorn: pip install 'orkestra-router[dashboard]'"
    ) from exc

from orkestra.dashboard._app import create_app
from orkestra.dashboard._server import DEFAULT_PORT, DashboardServer, run_dashboard

__all__ = ["DEFAULT_PORT", "DashboardServer", "create_app", "run_dashboard"]
