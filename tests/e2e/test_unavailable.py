"""When the engine is not there, a caller hears an apology rather than silence or a busy tone."""

from __future__ import annotations

import pytest

from ivr.sipp import place_call

pytestmark = pytest.mark.e2e


async def test_with_no_engine_connected_the_caller_hears_an_apology_and_is_released(sandbox):
    # No engine runs in this module: Stasis(ivr) fails and the dialplan plays system_busy.
    result = await place_call("15771000", caller="01077778888", max_duration=30)
    assert result.answered, result.describe()
    assert result.ended_by == "remote", result.describe()
    assert result.duration is not None and result.duration > 1.0   # the apology was played
