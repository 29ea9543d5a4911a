"""The agent queues the engine runs itself: callers wait in line, agents are rung.

``model``: the values (queue and agent specs, the caller's place, events); ``core``: ``Acd``,
the lines and agents as pure state driven with explicit times; ``estimate``: the expected
wait and the range announced to the caller; ``service``: ``Acd`` on a live switch.
"""

from ivr.acd.core import Acd
from ivr.acd.estimate import AppQueueAverage, WaitEstimator, announce_range
from ivr.acd.model import (
    AcdError, AcdStateError, AgentSpec, AgentState, AgentStatus, Event, NoSuchAgent, NoSuchCall,
    NoSuchQueue, Offer, QueueSpec, Waiting,
)

__all__ = [
    "Acd", "AppQueueAverage", "WaitEstimator", "announce_range",
    "AcdError", "AcdStateError", "AgentSpec", "AgentState", "AgentStatus", "Event", "NoSuchAgent",
    "NoSuchCall", "NoSuchQueue", "Offer", "QueueSpec", "Waiting",
]
