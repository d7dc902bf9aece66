"""The run queue: the producer claims runs from storage, the executor runs each one, the reaper ends the runs of
workers that died."""
