"""The cron dashboard at `/dashboard`: server-rendered page shells (Jinja2) whose vanilla JavaScript reads and
changes crons through the public API from the browser, so that auth, when configured, applies to the dashboard
exactly as to any client. Nothing here is built at install time and no page asks any other host for anything."""

from crongraph.dashboard.router import router

__all__ = ["router"]
