"""The text shot language: "overhead wide, slow push in on character_1" → changes to a `ShotSpec`.

The vocabulary (angles, sizes, moves, speeds, adjustments, lenses, role words, filler) lives in a data
file, `reshoot/data/shot_language.toml`, which a studio extends with a `shot_language.toml` in the
workspace. Entity names come from the layout and camera names from the registration.

Grammar: a description is clauses separated by commas (or ; ! ?). In each clause the words are read
left to right, longest phrase first. A shot word (angle, size, move, speed, adjustment, lens) applies
at once; a role word (on, follow, keep, release, match) says what the entity or camera names after it
are for, until the next comma or shot word; a name with no role word before it is the target. A
description is applied to the current shot: `reshoot shoot` starts from a high, wide, static shot,
`reshoot revise` from the shot as it is, so one grammar serves both.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from reshoot.geometry.errors import InputError
from reshoot.shot_spec import ShotSpec

SECTIONS = ("angles", "sizes", "moves", "speeds", "adjustments", "lenses")
ROLES = ("target", "follow", "keep", "release", "match")
WORKSPACE_VOCABULARY = "shot_language.toml"
MAX_DESCRIPTION = 1000  # characters of a shot description: a few words, never a pasted file
_LENS = re.compile(r"^(\d+(?:\.\d+)?)mm$")
_CLAUSE_BREAK = re.compile(r"[,;!?\n]|\.(?:\s|$)")
_ELEVATION_LIMITS = (-30.0, 80.0)  # pitch of angled cameras; 90 is the overhead angle's alone
_MIN_HEIGHT_M = 0.1
# Explicit cameras are not designed around a subject, so relative words move them by fixed steps.
_EXPLICIT_STEP_M = 0.5


@dataclass(frozen=True)
class Vocabulary:
    """The words of the shot language.

    Attributes:
        entries: section → entry name → its values (e.g. angles → overhead → {"elevation_deg": 90}).
        phrases: phrase → (section, entry name), for every section of SECTIONS.
        roles: phrase → role (one of ROLES).
        filler: words that carry no meaning.
    """

    entries: dict[str, dict[str, dict[str, Any]]]
    phrases: dict[str, tuple[str, str]]
    roles: dict[str, str]
    filler: frozenset[str]

    def listing(self) -> str:
        """Every understood phrase, by section, for error messages and docs."""
        lines = []
        for section in SECTIONS:
            words = [p for p, (s, _) in self.phrases.items() if s == section]
            lines.append(f"{section}: " + ", ".join(sorted(words)))
        lines.append("lens by focal length: NNmm (e.g. 35mm)")
        for role in ROLES:
            lines.append(f"{role} (before names): " + ", ".join(sorted(p for p, r in self.roles.items() if r == role)))
        return "\n".join(lines)


def _read_toml(text: str, where: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{where}: not valid TOML ({exc}).") from None


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Entries of `extra` added to `base`; an entry both have takes extra's values and both phrase lists."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        elif isinstance(value, list) and isinstance(out.get(key), list):
            out[key] = out[key] + [v for v in value if v not in out[key]]
        else:
            out[key] = value
    return out


def load_vocabulary(workspace: str | Path | None = None) -> Vocabulary:
    """The built-in vocabulary, extended by `WS/shot_language.toml` when the workspace has one.

    Raises:
        InputError: the workspace's file is not valid TOML or has malformed entries.
    """
    data = _read_toml(
        resources.files("reshoot").joinpath("data", "shot_language.toml").read_text(), "shot_language.toml"
    )
    where = "reshoot/data/shot_language.toml"
    if workspace is not None and (Path(workspace) / WORKSPACE_VOCABULARY).is_file():
        where = str(Path(workspace) / WORKSPACE_VOCABULARY)
        data = _merge(data, _read_toml(Path(where).read_text(), where))
    phrases: dict[str, tuple[str, str]] = {}
    entries: dict[str, dict[str, dict[str, Any]]] = {}
    for section in SECTIONS:
        entries[section] = {}
        for name, entry in data.get(section, {}).items():
            if not isinstance(entry, dict) or not all(isinstance(p, str) for p in entry.get("phrases", [None])):
                raise InputError(f'{where}: [{section}.{name}] needs phrases = ["..."] (a list of strings).')
            entries[section][name] = {k: v for k, v in entry.items() if k != "phrases"}
            for phrase in entry["phrases"]:
                phrases[_normal(phrase)] = (section, name)
    roles = {}
    for role in ROLES:
        for phrase in data.get("roles", {}).get(role, []):
            roles[_normal(phrase)] = role
    filler = frozenset(_normal(w) for w in data.get("filler", {}).get("words", []))
    return Vocabulary(entries, phrases, roles, filler)


def _normal(phrase: str) -> str:
    return " ".join(phrase.lower().split())


def _words(clause: str) -> list[str]:
    """Lower-case words; "35 mm" becomes "35mm"."""
    text = re.sub(r"(\d)\s+mm\b", r"\1mm", clause.lower())
    return [w.strip("\"'()") for w in text.split() if w.strip("\"'()")]


@dataclass(frozen=True)
class _Token:
    kind: str  # a section, "role", "entity", "camera", "lens", "filler"
    value: Any
    text: str


def _tokens(
    words: Sequence[str], vocabulary: Vocabulary, entities: dict[str, str], cameras: dict[str, str], description: str
) -> list[_Token]:
    """Longest phrase first at each position."""
    longest = max([len(p.split()) for p in (*vocabulary.phrases, *vocabulary.roles, *entities, *cameras)] + [1])
    out, i = [], 0
    while i < len(words):
        for n in range(min(longest, len(words) - i), 0, -1):
            phrase = " ".join(words[i : i + n])
            token = None
            if phrase in entities:
                token = _Token("entity", entities[phrase], phrase)
            elif phrase in cameras:
                token = _Token("camera", cameras[phrase], phrase)
            elif phrase in vocabulary.phrases:
                section, name = vocabulary.phrases[phrase]
                token = _Token(section, name, phrase)
            elif phrase in vocabulary.roles:
                token = _Token("role", vocabulary.roles[phrase], phrase)
            elif n == 1 and phrase in vocabulary.filler:
                token = _Token("filler", None, phrase)
            elif n == 1 and _LENS.match(phrase):
                token = _Token("lens", float(_LENS.match(phrase).group(1)), phrase)
            if token is not None:
                out.append(token)
                i += n
                break
        else:
            names = ", ".join(sorted(entities.values())) or "none (run `reshoot layout` first)"
            raise InputError(
                f"shot description {description!r}: {words[i]!r} is not understood.\n"
                f"Understood:\n{vocabulary.listing()}\nentities: {names}\n"
                f"cameras (to match): {', '.join(sorted(cameras.values())) or 'none'}\n"
                "Anything else is an error; a studio adds words in WS/shot_language.toml (docs/shots.md)."
            )
    return out


def apply_description(
    spec: ShotSpec, description: str, vocabulary: Vocabulary, entities: Iterable[str] = (), cameras: Iterable[str] = ()
) -> ShotSpec:
    """`spec` changed by the words of `description` (see the module docstring for the grammar).

    Args:
        spec: the shot as it is.
        entities: the layout's entity names (matched case-insensitively).
        cameras: the production cameras' names (for "match").

    Raises:
        InputError: an empty or overlong description (MAX_DESCRIPTION), an unknown word (the message
            lists what is understood), a description with no meaning, an entity or camera used where it
            cannot be, a lens outside 5 to 1200 mm, or a word an explicit (keyframed) shot cannot take.
    """
    if not isinstance(description, str) or not description.strip():
        raise InputError('the shot description is empty; describe the shot, e.g. "overhead wide".')
    if len(description) > MAX_DESCRIPTION:
        raise InputError(
            f"the shot description is {len(description)} characters long (it begins "
            f"{description[:40]!r}); describe the shot in a few words, at most {MAX_DESCRIPTION} "
            'characters, e.g. "overhead wide".'
        )
    entity_names = {_normal(e): e for e in entities}
    camera_names = {_normal(c): c for c in cameras}
    changed = False
    for clause in _CLAUSE_BREAK.split(description):
        role = "target"
        for token in _tokens(_words(clause), vocabulary, entity_names, camera_names, description):
            if token.kind == "filler":
                continue
            if token.kind == "role":
                role = token.value
                continue
            if token.kind in ("entity", "camera"):
                spec = _apply_name(spec, token, role, description)
            else:
                role = "target"
                spec = _apply_word(spec, token, vocabulary, description)
            changed = True
    if not changed:
        raise InputError(
            f"shot description {description!r} has no shot words (only filler); say what to change, "
            'e.g. "higher", "overhead wide" or "keep character_1 in frame".'
        )
    return spec


def _explicit_only(spec: ShotSpec, token: _Token, description: str) -> None:
    if spec.explicit:
        raise InputError(
            f"shot description {description!r}: {token.text!r} cannot change a shot whose cameras come from a file. "
            "Such shots take higher, lower, closer, wider, left, right and lenses; for anything else give new "
            "cameras with `reshoot shoot WS --cameras FILE --name NAME`."
        )


def _apply_name(spec: ShotSpec, token: _Token, role: str, description: str) -> ShotSpec:
    name = token.value
    if token.kind == "camera" or role == "match":
        if token.kind != "camera":
            raise InputError(
                f"shot description {description!r}: match takes a production camera's name, and "
                f"{name!r} is an entity of the layout."
            )
        _explicit_only(spec, token, description)
        return dataclasses.replace(
            spec, match_camera=name, angle="match", elevation_deg=None, height_m=None, lens_mm=None
        )
    _explicit_only(spec, token, description)
    if role == "keep":
        return dataclasses.replace(spec, keep=tuple(dict.fromkeys((*spec.keep, name))))
    if role == "release":
        return dataclasses.replace(
            spec,
            keep=tuple(k for k in spec.keep if k != name),
            target=None if spec.target == name else spec.target,
            follow=spec.follow and spec.target != name,
        )
    return dataclasses.replace(spec, target=name, follow=role == "follow")


def _apply_word(spec: ShotSpec, token: _Token, vocabulary: Vocabulary, description: str) -> ShotSpec:
    if token.kind == "lens":
        if not 5 <= token.value <= 1200:
            raise InputError(f"shot description {description!r}: a {token.value:g} mm lens is outside 5 to 1200 mm.")
        return dataclasses.replace(spec, lens_mm=token.value)
    entry = vocabulary.entries[token.kind][token.value]
    if token.kind == "lenses":
        return dataclasses.replace(spec, lens_mm=float(entry["focal_mm"]))
    if token.kind == "adjustments":
        return _adjust(spec, entry)
    _explicit_only(spec, token, description)
    if token.kind == "angles":
        return dataclasses.replace(
            spec,
            angle=token.value,
            match_camera=None,
            elevation_deg=_float(entry.get("elevation_deg")),
            height_m=_float(entry.get("height_m")),
        )
    if token.kind == "sizes":
        return dataclasses.replace(spec, size=token.value, fill=float(entry["fill"]))
    if token.kind == "moves":
        return dataclasses.replace(spec, move=token.value, move_amount=float(entry["amount"]))
    return dataclasses.replace(spec, speed=float(entry["factor"]))  # speeds


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _adjust(spec: ShotSpec, entry: dict[str, Any]) -> ShotSpec:
    """A relative change: see [adjustments] in the vocabulary file."""
    changes: dict[str, Any] = {}
    if "speed_factor" in entry:
        changes["speed"] = spec.speed * float(entry["speed_factor"])
    if "roll_deg" in entry:
        changes["roll_deg"] = float(entry["roll_deg"])
    vertical = "elevation_deg" in entry or "height_m" in entry
    if spec.explicit:
        step = _EXPLICIT_STEP_M
        if vertical:
            changes["raise_m"] = spec.raise_m + step * (1 if float(entry.get("height_m", 0)) > 0 else -1)
        elif "distance_scale" in entry:
            changes["dolly_m"] = spec.dolly_m + step * (1 if float(entry["distance_scale"]) < 1 else -1)
        if "heading_deg" in entry:
            changes["truck_m"] = spec.truck_m - step * (1 if float(entry["heading_deg"]) > 0 else -1)
        return dataclasses.replace(spec, **changes)
    if vertical:
        if spec.elevation_deg is None and spec.height_m is None:  # matched: the camera's height, offset
            changes["raise_m"] = spec.raise_m + float(entry["height_m"])
        elif spec.elevation_deg is None:  # a fixed-height camera
            changes["height_m"] = max(_MIN_HEIGHT_M, spec.height_m + float(entry["height_m"]))
        elif spec.elevation_deg >= 90.0:  # overhead stays straight down and rises or sinks
            changes["distance_scale"] = spec.distance_scale * float(entry["distance_scale"])
        else:
            low, high = _ELEVATION_LIMITS
            changes["elevation_deg"] = min(high, max(low, spec.elevation_deg + float(entry["elevation_deg"])))
    elif "distance_scale" in entry:
        changes["distance_scale"] = spec.distance_scale * float(entry["distance_scale"])
    if "heading_deg" in entry:
        changes["heading_offset_deg"] = spec.heading_offset_deg + float(entry["heading_deg"])
    return dataclasses.replace(spec, **changes)


def default_spec(vocabulary: Vocabulary) -> ShotSpec:
    """The shot `reshoot shoot` starts from: a high, wide, static shot."""
    return apply_description(ShotSpec(), "high wide static", vocabulary)
