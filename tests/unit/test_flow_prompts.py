"""The prompt catalogue: every prompt in every language, rendered once to 8 kHz audio."""

import shutil
import wave

import pytest

from ivr.errors import FlowError
from ivr.prompts import build, load_catalogue
from flow_helpers import PROMPTS


def test_the_catalogue_has_four_languages_and_media_paths():
    catalogue = load_catalogue(PROMPTS)
    assert catalogue.languages == ("ko", "en", "zh", "vi")
    assert catalogue.has("welcome") and not catalogue.has("nope")
    assert catalogue.text("goodbye", "ko").endswith("안녕히 계십시오.")
    assert catalogue.media("welcome", "vi") == "sound:ivr/vi/welcome"


def test_a_prompt_missing_a_language_is_a_problem(tmp_path):
    (tmp_path / "catalog.yaml").write_text(
        "hello:\n  ko: 안녕하십니까\n  en: Hello\nbye:\n  ko: 안녕히 계십시오\nBad-Id:\n  ko: x\n  en: x\n",
        encoding="utf-8")
    with pytest.raises(FlowError) as err:
        load_catalogue(tmp_path)
    assert [str(p) for p in err.value.problems] == [
        f"{tmp_path}/catalog.yaml:4: prompt 'bye' has no text in en",
        f"{tmp_path}/catalog.yaml:6: prompt id 'Bad-Id' must be lower-case letters, digits and '_', "
        "starting with a letter (it names a file)",
    ]


@pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("sox")), reason="needs espeak-ng and sox")
def test_build_renders_8khz_mono_audio_and_skips_what_did_not_change(tmp_path):
    (tmp_path / "catalog.yaml").write_text(
        "hello:\n  ko: 안녕하십니까\n  en: Hello\nbye:\n  ko: 안녕히 계십시오\n  en: Goodbye\n", encoding="utf-8")
    catalogue = load_catalogue(tmp_path)
    out = tmp_path / "audio"
    first = build(catalogue, out, ["ko", "en"])
    assert first.rendered == ["en/bye", "en/hello", "ko/bye", "ko/hello"] and not first.failed
    with wave.open(str(out / "ko" / "hello.wav")) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        assert w.getnframes() > 800
    again = build(catalogue, out, ["ko", "en"])
    assert (again.rendered, again.unchanged) == ([], 4)

    (tmp_path / "catalog.yaml").write_text(
        "hello:\n  ko: 안녕하십니까\n  en: Hello there\nbye:\n  ko: 안녕히 계십시오\n  en: Goodbye\n", encoding="utf-8")
    changed = build(load_catalogue(tmp_path), out, ["en"])
    assert (changed.rendered, changed.unchanged) == (["en/hello"], 1)
    assert str(changed) == "prompts: 1 rendered, 1 unchanged"
