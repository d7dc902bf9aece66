"""crongraph: an open, self-hosted server for the LangGraph Platform HTTP API with a trustworthy cron scheduler."""

__version__ = "0.1.0"
