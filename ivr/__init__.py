"""ivr: an IVR/ARS voice-flow engine that drives Asterisk over ARI."""

__version__ = "0.1.0"
