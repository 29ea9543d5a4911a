"""Asterisk adapter: REST client, event stream with reconnect, per-channel ordered dispatch.

The app needs only ``AriAdapter`` (and ``Timeouts``); ``AriCall`` implements ``ivr.call.Call``.
"""

from ivr.ari.call import AriCall
from ivr.ari.client import AriClient
from ivr.ari.dispatcher import AriAdapter, NewCallHandler
from ivr.ari.events import EventStream
from ivr.ari.timeouts import Timeouts

__all__ = ["AriAdapter", "AriCall", "AriClient", "EventStream", "NewCallHandler", "Timeouts"]
