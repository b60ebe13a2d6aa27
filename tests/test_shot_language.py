"""The text shot language: documented examples, relative revisions, studio extensions, random words."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reshoot import ReshootError
from reshoot.geometry.camera import Camera
from reshoot.geometry.conventions import look_at
from reshoot.shot_design import EntityTrack, SceneFacts, design_shot
from reshoot.shot_language import apply_description, default_spec, load_vocabulary

REPO = Path(__file__).resolve().parents[1]
ENTITIES = ["character_1", "character_2", "prop_1", "Maya"]
CAMERAS = ["a_wide", "b_medium"]


def small_scene(frames: int = 12) -> SceneFacts:
    """Two cameras around a 4 m set; two characters walking, a prop, and "Maya" standing still."""
    K = torch.tensor([[500.0, 0, 319.5], [0, 500, 179.5], [0, 0, 1]], dtype=torch.float64)
    poses = torch.stack([look_at([0, -6, 1.8], [0, 0, 1]), look_at([5, -3, 2.0], [0, 0, 1])])
    cameras = Camera.create(CAMERAS, torch.stack([K, K]), poses, [640, 640], [360, 360])
    t = np.linspace(0, 1, frames)[:, None]

    def walker(start, end):
        centre = np.asarray(start) + t * (np.asarray(end) - np.asarray(start))
        lo = np.concatenate([centre - 0.25, np.zeros((frames, 1))], axis=1)
        hi = np.concatenate([centre + 0.25, np.full((frames, 1), 1.8)], axis=1)
        return np.stack([lo, hi], axis=1)

    def still(lo, hi):
        return np.broadcast_to(np.stack([np.asarray(lo, float), np.asarray(hi, float)]), (frames, 2, 3)).copy()

    entities = {
        "character_1": EntityTrack("character_1", "character", 0, walker([-1.5, 0.0], [1.5, 0.5])),
        "character_2": EntityTrack("character_2", "character", 1, walker([1.0, 1.0], [-1.0, -0.5])),
        "prop_1": EntityTrack("prop_1", "prop", 2, still([0.8, -1.2, 0], [1.2, -0.8, 0.6])),
        "Maya": EntityTrack("Maya", "character", 3, still([-2.0, 1.5, 0], [-1.6, 1.9, 1.7])),
    }
    return SceneFacts(0, frames, 24.0, cameras, entities)


def _doc_examples() -> list[str]:
    """Every line of the shot-language examples block in docs/shots.md."""
    text = (REPO / "docs" / "shots.md").read_text()
    block = re.search(r"<!-- examples -->\s*```text\n(.*?)```", text, re.S)
    assert block, "docs/shots.md lost its examples block"
    return [line.strip() for line in block.group(1).splitlines() if line.strip()]


def test_every_documented_example_gives_a_shot():
    vocabulary = load_vocabulary()
    facts = small_scene()
    examples = _doc_examples()
    assert len(examples) >= 10
    for example in examples:
        spec = apply_description(default_spec(vocabulary), example, vocabulary, ENTITIES, CAMERAS)
        path = design_shot(spec, facts)
        assert path.cam_from_world.shape == (facts.frame_count, 4, 4) and np.isfinite(path.cam_from_world).all()


def test_words_do_what_they_say():
    v = load_vocabulary()
    start = default_spec(v)
    spec = apply_description(start, "overhead wide, slow push in on character_1", v, ENTITIES)
    assert (spec.angle, spec.elevation_deg, spec.size, spec.move, spec.target) == (
        "overhead",
        90.0,
        "wide",
        "push_in",
        "character_1",
    )
    assert spec.speed == 0.6 and not spec.follow
    higher = apply_description(spec, "higher", v, ENTITIES)
    assert higher.distance_scale == pytest.approx(1.25) and higher.elevation_deg == 90.0  # overhead rises
    tilted = apply_description(start, "higher", v, ENTITIES)
    assert tilted.elevation_deg == pytest.approx(start.elevation_deg + 10)
    kept = apply_description(spec, "keep character_2 and Maya in frame", v, ENTITIES)
    assert kept.keep == ("character_2", "Maya") and kept.target == "character_1"
    released = apply_description(kept, "release maya", v, ENTITIES)  # names are case-insensitive
    assert released.keep == ("character_2",)
    follow = apply_description(start, "low angle, follow character_2, 85mm", v, ENTITIES)
    assert follow.follow and follow.target == "character_2" and follow.height_m == 0.4 and follow.lens_mm == 85.0
    matched = apply_description(start, "match a_wide", v, ENTITIES, CAMERAS)
    assert matched.match_camera == "a_wide" and matched.angle == "match"
    assert apply_description(matched, "higher", v).raise_m == pytest.approx(0.5)  # the matched height, raised
    assert apply_description(follow, "lower, lower", v).height_m == pytest.approx(0.1)  # never below 10 cm


def test_unknown_words_and_empty_descriptions_are_refused_with_what_is_understood():
    v = load_vocabulary()
    with pytest.raises(ReshootError, match=r"'zoomify' is not understood(.|\n)*overhead(.|\n)*character_1"):
        apply_description(default_spec(v), "overhead zoomify", v, ENTITIES)
    with pytest.raises(ReshootError, match="only filler"):
        apply_description(default_spec(v), "the shot, please", v, ENTITIES)
    with pytest.raises(ReshootError, match="empty"):
        apply_description(default_spec(v), "  ", v, ENTITIES)
    with pytest.raises(ReshootError, match="match takes a production camera"):
        apply_description(default_spec(v), "match character_1", v, ENTITIES, CAMERAS)


def test_a_studio_extends_the_vocabulary_in_the_workspace(tmp_path: Path):
    (tmp_path / "shot_language.toml").write_text(
        '[angles.overhead]\nphrases = ["helicopter"]\n[moves.push_in]\nphrases = ["snorricam in"]\n'
    )
    v = load_vocabulary(tmp_path)
    spec = apply_description(default_spec(v), "helicopter, snorricam in", v)
    assert spec.angle == "overhead" and spec.move == "push_in"
    assert apply_description(default_spec(v), "top down", v).angle == "overhead"  # built-in words stay
    (tmp_path / "shot_language.toml").write_text("[angles.overhead\n")
    with pytest.raises(ReshootError, match="not valid TOML"):
        load_vocabulary(tmp_path)


def _phrases() -> list[str]:
    v = load_vocabulary()
    return sorted([*v.phrases, *v.roles, *v.filler, *ENTITIES, *CAMERAS, "35mm", "12 mm", "0mm", ","])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.sampled_from(_phrases()), st.text(max_size=8)), max_size=10))
def test_random_word_sequences_give_a_shot_or_a_reshoot_error(words):
    v = load_vocabulary()
    facts = small_scene(frames=6)
    try:
        spec = apply_description(default_spec(v), " ".join(words), v, ENTITIES, CAMERAS)
        path = design_shot(spec, facts)
    except ReshootError as exc:
        assert str(exc)
        return
    assert np.isfinite(path.cam_from_world).all() and np.isfinite(path.K).all()
