"""Graphs: langgraph.json, loading user graphs, the checkpointer and store, and running a graph into events."""
