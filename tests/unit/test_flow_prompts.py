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
    from ivr.ari.call import media_uri
    from ivr.call import Prompt

    assert media_uri(Prompt("welcome", "vi")) == "sound:ivr/vi/welcome"


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


def _tone(path, seconds=1.0, rate=44100, channels=2):
    """A stand-in for a studio recording: a CD-quality stereo tone."""
    import subprocess

    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["sox", "-n", "-r", str(rate), "-c", str(channels), str(path), "synth", str(seconds),
                    "sine", "440"], check=True, capture_output=True)


@pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("sox")), reason="needs espeak-ng and sox")
def test_a_recording_covers_its_prompt_instead_of_speech_synthesis(tmp_path):
    (tmp_path / "catalog.yaml").write_text(
        "hello:\n  ko: 안녕하십니까\n  en: Hello\nbye:\n  ko: 안녕히 계십시오\n  en: Goodbye\n", encoding="utf-8")
    recordings, out = tmp_path / "recordings", tmp_path / "audio"
    _tone(recordings / "ko" / "hello.wav", seconds=1.5)
    _tone(recordings / "en" / "helo.flac")                       # a typo: reported, not used
    seen = []
    first = build(load_catalogue(tmp_path), out, recordings=recordings,
                  progress=lambda done, total, key, what: seen.append((done, total, key, what)))
    assert first.recorded == ["ko/hello"]
    assert first.rendered == ["en/bye", "en/hello", "ko/bye"]
    assert first.strays == [str(recordings / "en" / "helo.flac")]
    assert [s[:2] for s in seen] == [(1, 4), (2, 4), (3, 4), (4, 4)]        # as each file is made
    assert ("ko/hello", "recorded") in {(s[2], s[3]) for s in seen}
    with wave.open(str(out / "ko" / "hello.wav")) as w:           # the recording, made Asterisk-ready
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        assert abs(w.getnframes() - 12000) < 100                  # 1.5 s of it, not the speech

    again = build(load_catalogue(tmp_path), out, recordings=recordings)
    assert (again.rendered, again.recorded, again.unchanged, again.covered) == ([], [], 4, 1)
    assert str(again) == "prompts: 0 rendered, 4 unchanged (1 covered by recordings)"

    # The text changed after the recording was made: kept, but the author is told.
    (tmp_path / "catalog.yaml").write_text(
        "hello:\n  ko: 안녕하세요\n  en: Hello\nbye:\n  ko: 안녕히 계십시오\n  en: Goodbye\n", encoding="utf-8")
    edited = build(load_catalogue(tmp_path), out, recordings=recordings)
    assert (edited.rendered, edited.recorded, edited.stale) == ([], [], ["ko/hello"])
    assert "record it again" in edited.warnings()[0]

    _tone(recordings / "ko" / "hello.wav", seconds=0.5)           # re-recorded: converted again
    rerecorded = build(load_catalogue(tmp_path), out, recordings=recordings)
    assert (rerecorded.recorded, rerecorded.stale) == (["ko/hello"], [])
    with wave.open(str(out / "ko" / "hello.wav")) as w:
        assert abs(w.getnframes() - 4000) < 100

    (recordings / "ko" / "hello.wav").unlink()                    # back to speech synthesis
    spoken = build(load_catalogue(tmp_path), out, recordings=recordings)
    assert (spoken.rendered, spoken.covered) == (["ko/hello"], 0)


@pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("sox")), reason="needs espeak-ng and sox")
def test_prompts_build_shows_progress_and_fails_on_a_broken_recording(tmp_path, capsys):
    from ivr.cli import main

    (tmp_path / "catalog.yaml").write_text(
        "hello:\n  ko: 안녕하십니까\n  en: Hello\nbye:\n  ko: 안녕히 계십시오\n  en: Goodbye\n", encoding="utf-8")
    (tmp_path / "recordings" / "en").mkdir(parents=True)
    (tmp_path / "recordings" / "en" / "bye.wav").write_bytes(b"not audio at all")
    assert main(["prompts", "build", "--prompts", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "[4/4]" in out                                        # progress, ending at the total
    assert "failed   en/bye" in out
    assert "1 failed: en/bye: sox cannot read" in out
    assert not (tmp_path / "audio" / "en" / "bye.wav").exists()


@pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("sox")), reason="needs espeak-ng and sox")
def test_validate_warns_of_prompts_without_audio_or_with_audio_older_than_the_text(tmp_path, capsys):
    from ivr.cli import main
    from ivr.prompts import audio_problems

    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "catalog.yaml").write_text(
        "hello:\n  ko: 안녕하십니까\n  en: Hello\nbye:\n  ko: 안녕히 계십시오\n  en: Goodbye\n", encoding="utf-8")
    assert audio_problems(load_catalogue(prompts)) == []          # no audio folder: built elsewhere
    assert build(load_catalogue(prompts), prompts / "audio").ok
    assert audio_problems(load_catalogue(prompts)) == []
    (prompts / "audio" / "en" / "bye.wav").unlink()
    (prompts / "catalog.yaml").write_text(
        "hello:\n  ko: 안녕하세요\n  en: Hello\nbye:\n  ko: 안녕히 계십시오\n  en: Goodbye\n", encoding="utf-8")
    assert [str(p) for p in audio_problems(load_catalogue(prompts))] == [
        f"{prompts}/catalog.yaml:1: warning: prompt 'hello': the audio in ko is older than its text or "
        "recording; run 'ivr prompts build'",
        f"{prompts}/catalog.yaml:4: warning: prompt 'bye' has no audio in en (callers would hear nothing); "
        "run 'ivr prompts build'"]
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "f.yaml").write_text("flow: f\nnumbers: ['1']\nentry: hi\nnodes:\n  hi:\n    hangup: [hello, bye]\n",
                                  encoding="utf-8")
    assert main(["validate", "--prompts", str(prompts), str(flows)]) == 0    # warnings do not fail it
    captured = capsys.readouterr()
    assert "has no audio in en" in captured.err and "(2 warning(s))" in captured.out
    assert build(load_catalogue(prompts), prompts / "audio").ok
    assert audio_problems(load_catalogue(prompts)) == []


def test_a_catalogue_with_bytes_that_are_not_utf8_is_a_flow_error_at_the_line(tmp_path):
    (tmp_path / "catalog.yaml").write_bytes("hello:\n  ko: 안녕하십니까\n  en: Hel".encode() + b"\xff\xfelo\n")
    with pytest.raises(FlowError) as err:
        load_catalogue(tmp_path)
    assert [str(p) for p in err.value.problems] == [
        f"{tmp_path}/catalog.yaml:3: column 10: the file is not UTF-8 text (byte 0xff: invalid start byte); "
        "save it as UTF-8"]


def test_a_catalogue_with_a_control_character_or_deep_nesting_is_a_flow_error(tmp_path):
    for text, line, says in (("hello:\n  ko: 안녕\x00\n", 2, "the control character U+0000 (NUL)"),
                             ("hello: " + "{a: " * 300 + "}" * 300 + "\n", 1, "nested more than 64 levels")):
        (tmp_path / "catalog.yaml").write_text(text, encoding="utf-8")
        with pytest.raises(FlowError) as err:
            load_catalogue(tmp_path)
        (problem,) = err.value.problems
        assert (problem.file, problem.line) == (f"{tmp_path}/catalog.yaml", line) and says in problem.message


def test_a_catalogue_that_is_a_folder_or_missing_is_a_flow_error(tmp_path):
    (tmp_path / "catalog.yaml").mkdir()
    with pytest.raises(FlowError) as err:
        load_catalogue(tmp_path)
    assert [str(p) for p in err.value.problems] == [
        f"{tmp_path}/catalog.yaml:1: cannot read the prompt catalogue: it is a folder, not a file"]
    with pytest.raises(FlowError) as err:
        load_catalogue(tmp_path / "elsewhere" / "catalog.yaml")
    assert [str(p) for p in err.value.problems] == [
        f"{tmp_path}/elsewhere/catalog.yaml:1: cannot read the prompt catalogue: No such file or directory"]
