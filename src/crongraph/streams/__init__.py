"""Run event streams: publish, subscribe, replay."""
