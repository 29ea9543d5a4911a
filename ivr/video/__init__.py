"""The sign-language video entrance: deaf and hard-of-hearing callers reach an interpreter by
video, from a web page the engine serves or from a video phone, on the same flows, queues,
priorities and records as every other caller.

``visits``: what the caller's page chose (topic, sign language, language, an optional phone
number, a booking code) and the messages each page is sent; ``bookings``: the time slots a
consultation can be booked at and their codes; ``call``: ``VideoCall``, a live call seen through
the ``Call`` port that also shows the page, as text, whatever the call would say; ``service``:
``VideoService``, which admits video calls, tells each page where its call stands, relays the
text chat into the call record and books consultations.  The web side (``ivr.web.video``)
speaks only to ``VideoService``.
"""

from ivr.video.service import VideoRefused, VideoService

__all__ = ["VideoService", "VideoRefused"]
