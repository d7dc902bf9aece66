"""Execution workers (`crongraph serve --exec-workers N`): child processes that execute runs beside the serving
process, so that draining a backlog can use more than one core.

- `channel.py`: the pipe between the server and one worker (length-prefixed frames of pickled message lists).
- `relay.py`: what crosses it: a notifier that delivers locally and forwards hints to the other processes, and
  the worker's broker, which forwards a run's `start`, events and `close` to the server's broker.
- `worker.py`: the worker's main: a headless runtime (savers, database handle, its own RunQueue and Executor under
  its own lease owner; no HTTP, scheduler, reaper or sweepers).
- `supervisor.py`: the server's side: starts the workers, replays their traffic, restarts a dead one.

Every guarantee rests on storage as with replicas: a worker claims runs with the same claim statement, under its
own lease, and fences its outcome with the lease token; the pipe carries hints and the live event stream only.
"""
