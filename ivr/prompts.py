"""The prompt catalogue: one id, one text per language, rendered audio beside it.

``prompts/catalog.yaml`` maps a prompt id to its texts::

    welcome:
      ko: 국민건강보험공단입니다.
      en: Welcome to the National Health Insurance Service.
      zh: 您好，这里是国民健康保险公团。
      vi: Xin chào, đây là Cơ quan Bảo hiểm Y tế Quốc gia.

Every prompt has a text in every language of the catalogue (the languages are those the first
prompt names).  Flows name prompts by id; a call plays ``Prompt(id, lang)``, which the ARI
adapter asks Asterisk for as ``sound:ivr/<lang>/<id>`` and Asterisk finds at
``<sounds>/ivr/<lang>/<id>.wav`` — the files ``build`` renders into
``prompts/audio/<lang>/<id>.wav`` with espeak-ng and sox.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import MappingProxyType

import structlog

from ivr.errors import FlowError, FlowProblem, IvrError

log = structlog.get_logger(__name__)

PROMPT_ID = re.compile(r"^[a-z][a-z0-9_]*$")
LANGUAGE = re.compile(r"^[a-z]{2,3}$")

# espeak-ng voice for each language code used in the catalogue.
VOICES: Mapping[str, str] = MappingProxyType({"ko": "ko", "en": "en", "zh": "cmn", "vi": "vi"})


@dataclasses.dataclass(frozen=True, slots=True)
class Catalogue:
    """Prompt texts by id and language.  Build with ``load_catalogue``."""

    path: str
    languages: tuple[str, ...]
    texts: Mapping[str, Mapping[str, str]]
    lines: Mapping[str, int] = dataclasses.field(default_factory=dict, compare=False)

    def has(self, prompt_id: str) -> bool:
        return prompt_id in self.texts

    def ids(self) -> list[str]:
        return list(self.texts)

    def text(self, prompt_id: str, lang: str) -> str:
        """The text of a prompt in a language (``KeyError`` when either is unknown)."""
        return self.texts[prompt_id][lang]


def load_catalogue(path: str | os.PathLike[str]) -> Catalogue:
    """Read ``catalog.yaml`` (or a folder holding it); ``FlowError`` lists every problem.

    Whatever the file holds (bytes that are not UTF-8, control characters, deep nesting) or
    when it cannot be read at all, the error is a ``FlowError`` whose problems say
    ``file:line: message``; nothing else is raised for a bad file."""
    from ivr.flow.yamlsafe import YMap, load_yaml_file, type_name

    p = Path(path)
    if p.is_dir() and p.name != "catalog.yaml":     # a folder of that name is reported as one
        p = p / "catalog.yaml"
    file = str(p)
    data = load_yaml_file(p, "the prompt catalogue")
    if not isinstance(data, YMap) or not data:
        raise FlowError([FlowProblem(file, 1, "the prompt catalogue must map prompt ids to texts by language")])

    problems: list[FlowProblem] = []
    languages: tuple[str, ...] = ()
    texts: dict[str, Mapping[str, str]] = {}
    lines: dict[str, int] = {}
    for prompt_id, entry in data.items():
        line = data.key_line(prompt_id)
        if not PROMPT_ID.match(prompt_id):
            problems.append(FlowProblem(file, line, f"prompt id '{prompt_id}' must be lower-case letters, "
                                        "digits and '_', starting with a letter (it names a file)"))
            continue
        if not isinstance(entry, YMap) or not entry:
            problems.append(FlowProblem(file, data.value_line(prompt_id),
                                        f"prompt '{prompt_id}' must map languages to texts, not {type_name(entry)}"))
            continue
        if not languages:
            languages = tuple(entry)
            for lang in languages:
                if not LANGUAGE.match(lang):
                    problems.append(FlowProblem(file, entry.key_line(lang),
                                                f"'{lang}' is not a language code (like ko, en, zh, vi)"))
        by_lang: dict[str, str] = {}
        for lang, value in entry.items():
            if lang not in languages:
                problems.append(FlowProblem(file, entry.key_line(lang),
                                            f"prompt '{prompt_id}' has a text in '{lang}', which the catalogue "
                                            f"does not use (languages: {', '.join(languages)})"))
            elif not isinstance(value, str) or not value.strip():
                problems.append(FlowProblem(file, entry.value_line(lang),
                                            f"prompt '{prompt_id}' in '{lang}' must be a text, not {type_name(value)}"))
            else:
                by_lang[lang] = value.strip()
        missing = [lang for lang in languages if lang not in entry]
        if missing:
            problems.append(FlowProblem(file, line, f"prompt '{prompt_id}' has no text in {', '.join(missing)}"))
        texts[prompt_id] = MappingProxyType(by_lang)
        lines[prompt_id] = line
    if problems:
        raise FlowError(problems)
    return Catalogue(file, languages, MappingProxyType(texts), MappingProxyType(lines))


# -- rendering ------------------------------------------------------------------------------

class ToolMissing(IvrError):
    """A program ``build`` needs (espeak-ng, sox) is not on the PATH; the message says how to
    install it.  Raised before anything is made, so it is said once, not once per prompt."""

    def __init__(self, tools: Iterable[str]) -> None:
        self.tools = tuple(tools)
        one = len(self.tools) == 1
        super().__init__(f"{' and '.join(self.tools)} {'is' if one else 'are'} not installed, so the prompts "
                         f"cannot be made; install {'it' if one else 'them'} with "
                         f"'apt-get install {' '.join(self.tools)}' (or run scripts/setup)")


@dataclasses.dataclass(slots=True)
class BuildResult:
    rendered: list[str] = dataclasses.field(default_factory=list)     # spoken by espeak-ng
    recorded: list[str] = dataclasses.field(default_factory=list)     # converted from a recording
    unchanged: int = 0
    covered: int = 0                  # prompts a recording covers (converted now or before)
    failed: list[str] = dataclasses.field(default_factory=list)
    stale: list[str] = dataclasses.field(default_factory=list)        # text changed after recording
    strays: list[str] = dataclasses.field(default_factory=list)       # recordings of no prompt

    @property
    def ok(self) -> bool:
        return not self.failed

    def __str__(self) -> str:
        text = f"prompts: {len(self.rendered)} rendered"
        if self.recorded:
            text += f", {len(self.recorded)} from recordings"
        text += f", {self.unchanged} unchanged"
        if self.covered:
            text += f" ({self.covered} covered by recordings)"
        if self.failed:
            text += f", {len(self.failed)} failed: " + "; ".join(self.failed)
        return text

    def warnings(self) -> list[str]:
        return ([f"{key}: the catalogue text changed after this prompt was recorded; record it again "
                 "(or delete the recording to go back to speech synthesis)" for key in self.stale]
                + [f"{path}: no such prompt in the catalogue (a typo in the file name?); not used"
                   for path in self.strays])


MANIFEST = "manifest.json"
RECORDING_SUFFIXES = frozenset({".wav", ".flac", ".ogg", ".au", ".aiff", ".aif", ".mp3"})

# progress(done, total, key, what): called as each file is written ("rendered", "recorded" or
# "failed"), so a command can show how far it is.
Progress = Callable[[int, int, str, str], None]


def _fingerprint(voice: str, text: str) -> str:
    return hashlib.sha256(f"espeak-ng|{voice}|8000/1/16|{text}".encode()).hexdigest()[:16]


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def find_recordings(folder: str | os.PathLike[str] | None, catalogue: Catalogue,
                    langs: Iterable[str]) -> tuple[dict[tuple[str, str], Path], list[str]]:
    """Studio recordings that cover prompts: ``<folder>/<lang>/<id>.wav`` (or .flac, .ogg …).

    Returns ``{(lang, id): file}`` and the files that match no prompt (reported, not used)."""
    found: dict[tuple[str, str], Path] = {}
    strays: list[str] = []
    if folder is None or not Path(folder).is_dir():
        return found, strays
    for lang in langs:
        lang_dir = Path(folder) / lang
        if not lang_dir.is_dir():
            continue
        for path in sorted(lang_dir.iterdir()):
            if path.name.startswith(".") or not path.is_file() or path.suffix.lower() not in RECORDING_SUFFIXES:
                continue
            if not catalogue.has(path.stem):
                strays.append(str(path))
            elif (lang, path.stem) in found:
                strays.append(f"{path} (a second recording of {lang}/{path.stem}; "
                              f"{found[lang, path.stem].name} is used)")
            else:
                found[lang, path.stem] = path
    return found, strays


def build(catalogue: Catalogue, out_dir: str | os.PathLike[str], langs: Iterable[str] | None = None,
          *, workers: int | None = None, recordings: str | os.PathLike[str] | None = None,
          progress: Progress | None = None) -> BuildResult:
    """Render missing or changed prompts to ``out_dir/<lang>/<id>.wav`` (8 kHz mono 16-bit).

    A prompt that ``recordings/<lang>/<id>.<ext>`` covers is converted from that recording
    instead of being spoken by espeak-ng; deleting the recording goes back to speech synthesis.
    ``out_dir/manifest.json`` keeps a fingerprint of what every file was made from (the text and
    voice, or the recording's content), so an unchanged prompt is not made again.  Needs
    ``espeak-ng`` (to speak a text) and ``sox`` on the PATH: ``ToolMissing`` when a prompt to
    make needs one that is not there, before anything is made.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / MANIFEST
    try:
        manifest: dict[str, str] = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        manifest = {}
    result = BuildResult()
    wanted = []
    for lang in (langs or catalogue.languages):
        if lang not in catalogue.languages:
            result.failed.append(f"{lang}: not a language of the catalogue")
        else:
            wanted.append(lang)
    covering, result.strays = find_recordings(recordings, catalogue, wanted)
    # (key, source: ("tts", voice, text) or ("rec", file), target, fingerprint)
    jobs: list[tuple[str, tuple, Path, str]] = []
    for lang in wanted:
        voice = VOICES.get(lang, lang)
        (out / lang).mkdir(exist_ok=True)
        for prompt_id, texts in catalogue.texts.items():
            key = f"{lang}/{prompt_id}"
            target = out / lang / f"{prompt_id}.wav"
            recording = covering.get((lang, prompt_id))
            if recording is not None:
                result.covered += 1
                text_fp = _digest(texts[lang].encode())
                try:
                    file_fp = _digest(recording.read_bytes())
                except OSError as exc:
                    result.failed.append(f"{key}: cannot read {recording}: {exc.strerror}")
                    continue
                old = manifest.get(key, "")
                if old.startswith(f"rec:{file_fp}:") and target.exists():
                    result.unchanged += 1
                    if old.rpartition(":")[2] != text_fp:
                        result.stale.append(key)
                    continue
                jobs.append((key, ("rec", recording), target, f"rec:{file_fp}:{text_fp}"))
                continue
            fp = _fingerprint(voice, texts[lang])
            if manifest.get(key) == fp and target.exists():
                result.unchanged += 1
                continue
            jobs.append((key, ("tts", voice, texts[lang]), target, fp))

    needed = {"espeak-ng": any(source[0] == "tts" for _, source, _, _ in jobs), "sox": bool(jobs)}
    missing = [tool for tool, need in needed.items() if need and shutil.which(tool) is None]
    if missing:
        raise ToolMissing(missing)
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 2) as pool:
        futures = {pool.submit(_make, source, target): (key, source[0], fp) for key, source, target, fp in jobs}
        for done, future in enumerate(concurrent.futures.as_completed(futures), 1):
            key, kind, fp = futures[future]
            error = future.result()
            if error:
                result.failed.append(f"{key}: {error}")
                manifest.pop(key, None)
            else:
                (result.recorded if kind == "rec" else result.rendered).append(key)
                manifest[key] = fp
            if progress is not None:
                progress(done, len(jobs), key, "failed" if error else "recorded" if kind == "rec" else "rendered")
    tmp = manifest_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(dict(sorted(manifest.items())), indent=1, ensure_ascii=False) + "\n",
                   encoding="utf-8")
    os.replace(tmp, manifest_path)
    result.rendered.sort()
    result.recorded.sort()
    return result


def audio_problems(catalogue: Catalogue, audio_dir: str | os.PathLike[str] | None = None,
                   recordings: str | os.PathLike[str] | None = None) -> list[FlowProblem]:
    """Warnings for prompts whose audio is missing or older than their text (or recording), so
    that ``ivr validate`` and the engine say so before a caller hears silence.

    ``audio_dir`` defaults to ``audio/`` beside the catalogue; when it does not exist at all the
    audio is taken to be elsewhere (a deployment's sound folder) and nothing is checked.
    """
    base = Path(catalogue.path).parent
    out = Path(audio_dir) if audio_dir is not None else base / "audio"
    if not out.is_dir():
        return []
    try:
        manifest: dict[str, str] = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        manifest = {}
    covering, _ = find_recordings(recordings if recordings is not None else base / "recordings",
                                  catalogue, catalogue.languages)
    problems = []
    for prompt_id, texts in catalogue.texts.items():
        missing, stale = [], []
        for lang in catalogue.languages:
            key = f"{lang}/{prompt_id}"
            if not (out / lang / f"{prompt_id}.wav").exists():
                missing.append(lang)
                continue
            made_from = manifest.get(key)
            if made_from is None:
                continue                              # placed by hand: nothing to compare
            recording = covering.get((lang, prompt_id))
            if recording is not None:
                try:
                    current = made_from.startswith(f"rec:{_digest(recording.read_bytes())}:")
                except OSError:
                    current = True
            else:
                current = made_from == _fingerprint(VOICES.get(lang, lang), texts[lang])
            if not current:
                stale.append(lang)
        line = catalogue.lines.get(prompt_id, 1)
        if missing:
            problems.append(FlowProblem(catalogue.path, line, f"prompt '{prompt_id}' has no audio in "
                                        f"{', '.join(missing)} (callers would hear nothing); "
                                        "run 'ivr prompts build'", severity="warning"))
        if stale:
            problems.append(FlowProblem(catalogue.path, line, f"prompt '{prompt_id}': the audio in "
                                        f"{', '.join(stale)} is older than its text or recording; "
                                        "run 'ivr prompts build'", severity="warning"))
    return problems


def _make(source: tuple, target: Path) -> str | None:
    if source[0] == "rec":
        return _convert(source[1], target)
    return _render(source[1], source[2], target)


def _convert(recording: Path, target: Path) -> str | None:
    """A studio recording → 8 kHz mono 16-bit ``target``; returns an error message or None."""
    with tempfile.TemporaryDirectory(prefix="ivr-prompt-") as tmp:
        cooked = Path(tmp) / "out.wav"
        try:
            subprocess.run(["sox", str(recording), "-r", "8000", "-c", "1", "-b", "16", str(cooked)],
                           check=True, capture_output=True, timeout=60)
        except FileNotFoundError as exc:
            return f"{exc.filename} is not installed"
        except subprocess.CalledProcessError as exc:
            return f"sox cannot read {recording}: {exc.stderr.decode(errors='replace').strip()[:200]}"
        except subprocess.TimeoutExpired:
            return f"sox took too long on {recording}"
        shutil.move(cooked, target)
    return None


def _render(voice: str, text: str, target: Path) -> str | None:
    """espeak-ng → sox → ``target``; returns an error message or None."""
    with tempfile.TemporaryDirectory(prefix="ivr-prompt-") as tmp:
        raw = Path(tmp) / "raw.wav"
        cooked = Path(tmp) / "out.wav"
        try:
            subprocess.run(["espeak-ng", "-v", voice, "-w", str(raw), "--stdin"], input=text.encode(),
                           check=True, capture_output=True, timeout=60)
            subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(cooked)],
                           check=True, capture_output=True, timeout=60)
        except FileNotFoundError as exc:
            return f"{exc.filename} is not installed"
        except subprocess.CalledProcessError as exc:
            return f"{exc.cmd[0]} failed: {exc.stderr.decode(errors='replace').strip()[:200]}"
        except subprocess.TimeoutExpired as exc:
            return f"{exc.cmd[0]} took too long"
        shutil.move(cooked, target)
    return None
