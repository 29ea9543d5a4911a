"""The prompt catalogue: one id, one text per language, rendered audio beside it.

``prompts/catalog.yaml`` maps a prompt id to its texts::

    welcome:
      ko: 국민건강보험공단입니다.
      en: Welcome to the National Health Insurance Service.
      zh: 您好，这里是国民健康保险公团。
      vi: Xin chào, đây là Cơ quan Bảo hiểm Y tế Quốc gia.

Every prompt has a text in every language of the catalogue (the languages are those the first
prompt names).  Flows name prompts by id; the runner plays ``sound:ivr/<lang>/<id>``, which
Asterisk finds at ``<sounds>/ivr/<lang>/<id>.wav`` — the files ``build`` renders into
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
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType

import structlog

from ivr.errors import FlowError, FlowProblem

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

    @staticmethod
    def media(prompt_id: str, lang: str) -> str:
        """The media URI the ``Call`` port plays for this prompt."""
        return f"sound:ivr/{lang}/{prompt_id}"


def load_catalogue(path: str | os.PathLike[str]) -> Catalogue:
    """Read ``catalog.yaml`` (or a folder holding it); ``FlowError`` lists every problem."""
    from ivr.flow.yamlsafe import YMap, load_yaml, type_name

    p = Path(path)
    if p.is_dir():
        p = p / "catalog.yaml"
    file = str(p)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise FlowError([FlowProblem(file, 1, f"cannot read the prompt catalogue: {exc.strerror}")]) from exc
    data = load_yaml(text, file)
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

@dataclasses.dataclass(slots=True)
class BuildResult:
    rendered: list[str] = dataclasses.field(default_factory=list)
    unchanged: int = 0
    failed: list[str] = dataclasses.field(default_factory=list)

    def __str__(self) -> str:
        text = f"prompts: {len(self.rendered)} rendered, {self.unchanged} unchanged"
        if self.failed:
            text += f", {len(self.failed)} failed: " + "; ".join(self.failed)
        return text


MANIFEST = "manifest.json"


def _fingerprint(voice: str, text: str) -> str:
    return hashlib.sha256(f"espeak-ng|{voice}|8000/1/16|{text}".encode()).hexdigest()[:16]


def build(catalogue: Catalogue, out_dir: str | os.PathLike[str], langs: Iterable[str] | None = None,
          *, workers: int | None = None) -> BuildResult:
    """Render missing or changed prompts to ``out_dir/<lang>/<id>.wav`` (8 kHz mono 16-bit).

    ``out_dir/manifest.json`` keeps a fingerprint of the text and voice of every file, so an
    unchanged prompt is not rendered again.  Needs ``espeak-ng`` and ``sox`` on the PATH.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / MANIFEST
    try:
        manifest: dict[str, str] = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        manifest = {}
    result = BuildResult()
    jobs: list[tuple[str, str, str, Path, str]] = []
    for lang in (langs or catalogue.languages):
        if lang not in catalogue.languages:
            result.failed.append(f"{lang}: not a language of the catalogue")
            continue
        voice = VOICES.get(lang, lang)
        (out / lang).mkdir(exist_ok=True)
        for prompt_id, texts in catalogue.texts.items():
            key = f"{lang}/{prompt_id}"
            target = out / lang / f"{prompt_id}.wav"
            fp = _fingerprint(voice, texts[lang])
            if manifest.get(key) == fp and target.exists():
                result.unchanged += 1
                continue
            jobs.append((key, voice, texts[lang], target, fp))

    with concurrent.futures.ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 2) as pool:
        futures = {pool.submit(_render, voice, text, target): (key, fp)
                   for key, voice, text, target, fp in jobs}
        for future in concurrent.futures.as_completed(futures):
            key, fp = futures[future]
            error = future.result()
            if error:
                result.failed.append(f"{key}: {error}")
                manifest.pop(key, None)
            else:
                result.rendered.append(key)
                manifest[key] = fp
    tmp = manifest_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(dict(sorted(manifest.items())), indent=1, ensure_ascii=False) + "\n",
                   encoding="utf-8")
    os.replace(tmp, manifest_path)
    result.rendered.sort()
    return result


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
