"""``AriBridge``: an Asterisk bridge the engine made — a holding room or a conversation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ivr.errors import CallEnded, ChannelGone

if TYPE_CHECKING:
    from ivr.ari.client import AriClient
    from ivr.call import Call


class AriBridge:
    """Implements ``ivr.call.Bridge``.  Channels that are gone are skipped quietly."""

    def __init__(self, client: AriClient, bridge_id: str, kind: str) -> None:
        self._client = client
        self.id = bridge_id
        self.kind = kind
        self.destroyed = False

    def __repr__(self) -> str:
        return f"<AriBridge {self.id} {self.kind}>"

    async def add(self, call: Call) -> None:
        """Raises ``CallEnded`` when the call's channel is gone."""
        try:
            await self._client.add_to_bridge(self.id, call.id)
        except ChannelGone as exc:
            raise CallEnded(f"call {call.id} is over: it cannot join bridge {self.id}") from exc

    async def remove(self, call: Call) -> None:
        try:
            await self._client.remove_from_bridge(self.id, call.id)
        except ChannelGone:
            pass

    async def start_moh(self, moh_class: str | None = None) -> None:
        await self._client.bridge_moh_start(self.id, moh_class)

    async def destroy(self) -> None:
        if self.destroyed:
            return
        self.destroyed = True
        try:
            await self._client.destroy_bridge(self.id)
        except ChannelGone:
            pass
