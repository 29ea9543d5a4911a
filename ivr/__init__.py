"""ivr: an IVR/ARS voice-flow engine that drives Asterisk over ARI."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ivr")   # the one source: [project] version in pyproject.toml
except PackageNotFoundError:       # a source tree that was never installed (pip install -e .)
    __version__ = "0+unknown"

del PackageNotFoundError, version
