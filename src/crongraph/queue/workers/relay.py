"""What crosses the pipe besides control messages: wake-up hints in both directions, and a worker's run events
towards the server's broker.

`RelayNotifier` is the notifier of both ends (the `notify/` seam, so callers are unchanged): a hint is delivered
to this process's listeners and forwarded to the peers (the server forwards to every worker; a worker to the
server, which relays it to the other workers). Only the channels named at construction are forwarded.

`ForwardingBroker` is a worker's broker: it keeps nothing (nobody subscribes in a worker) and forwards `start`,
each event (serialized once, here) and `close(final)` to the server, whose broker replays them, so `wait`,
`join`, `join_stream` and the thread stream see a worker's run as a local one. The executor closes a run only
after its outcome committed, and the pipe keeps order, so the server's waiters learn the end after it is stored.
"""

from __future__ import annotations

from typing import Any

from crongraph import serde
from crongraph.notify.local import LocalNotifier
from crongraph.queue.workers.channel import Channel
from crongraph.streams.broker import StreamBroker, compact


class RelayNotifier(LocalNotifier):
    def __init__(self, forwarded: frozenset[str]) -> None:
        super().__init__()
        self._forwarded = forwarded
        self.peers: dict[int, Channel] = {}  # by worker index (a worker has one peer: the server, index -1)

    async def notify(self, channel: str, payload: str) -> None:
        self.deliver(channel, payload)
        if channel in self._forwarded:
            for peer in self.peers.values():
                peer.send(("note", channel, payload))

    def relay(self, channel: str, payload: str, origin: int) -> None:
        """A hint a peer sent: delivered here and forwarded to every other peer."""
        self.deliver(channel, payload)
        if channel in self._forwarded:
            for index, peer in self.peers.items():
                if index != origin:
                    peer.send(("note", channel, payload))


class ForwardingBroker(StreamBroker):
    def __init__(self, channel: Channel) -> None:
        super().__init__(retention=0.0)
        self._channel = channel

    def start(self, run_id: str, thread_id: str) -> None:
        self._channel.send(("start", run_id, thread_id))

    def publish(self, run_id: str, name: str, data: Any) -> None:
        self._channel.send(("event", run_id, name, compact(serde.dumps(data))))

    def publish_encoded(self, run_id: str, name: str, data: bytes) -> None:
        self._channel.send(("event", run_id, name, data))

    def close(self, run_id: str, final: dict[str, Any] | None = None) -> None:
        self._channel.send(("close", run_id, final))
