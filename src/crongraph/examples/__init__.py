"""Bundled examples, served when there is no langgraph.json."""
