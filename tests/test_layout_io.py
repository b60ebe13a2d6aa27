"""The layout artefact: `read_layout` / `write_layout` round trip, the checks a hand-edited file meets,
and `Entity.boxes` on a take."""

from __future__ import annotations

import json

import numpy as np
import pytest

from reshoot.geometry.errors import FormatError
from reshoot.layout_io import Entity, EntityFrame, Layout, layout_document, read_layout, write_layout


def _walker(entity_id: int, name: str, frames: list[int]) -> Entity:
    rows = tuple(
        EntityFrame(
            f,
            (0.5 * f, 0.0, 0.875),  # (values a 4-decimal rounding keeps exactly)
            (0.5 * f - 0.25, -0.25, 0.0),
            (0.5 * f + 0.25, 0.25, 1.75),
            floor_position=(0.5 * f, 0.0, 0.0),
            confidence=0.8,
            cameras=("a", "b"),
            interpolated=f == 2,
        )
        for f in frames
    )
    return Entity(entity_id, name, "character", rows)


def _layout() -> Layout:
    crate = Entity(1, "crate", "prop", (EntityFrame(None, (1.0, 1.0, 0.25), (0.75, 0.75, 0.0), (1.25, 1.25, 0.5)),))
    return Layout((_walker(0, "Maya", [0, 1, 2, 5]), crate), ("a", "b", "c"), ("c",), (0, 6), ("a warning",))


class TestRoundTrip:
    def test_what_is_written_reads_back_the_same(self, tmp_path):
        write_layout(tmp_path / "layout.json", _layout())
        assert read_layout(tmp_path / "layout.json") == _layout()

    def test_the_document_keeps_its_documented_fields(self, tmp_path):
        write_layout(tmp_path / "layout.json", _layout())
        document = json.loads((tmp_path / "layout.json").read_text())
        assert (document["format"], document["version"]) == ("reshoot/layout", 1)
        assert document["cameras_left_out"] == ["c"] and document["frames"] == [0, 6]
        row = document["entities"][0]["frames"][2]
        assert set(row) == {
            "frame",
            "position",
            "floor_position",
            "box_min",
            "box_max",
            "confidence",
            "cameras",
            "interpolated",
        }
        assert "interpolated" not in document["entities"][0]["frames"][0]  # only written when true

    def test_a_rewrite_of_a_read_file_is_byte_identical(self, tmp_path):
        write_layout(tmp_path / "a.json", _layout())
        write_layout(tmp_path / "b.json", read_layout(tmp_path / "a.json"))
        assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()


class TestChecks:
    def _write(self, tmp_path, change) -> object:
        document = {"format": "reshoot/layout", "version": 1, **layout_document(_layout())}
        change(document["entities"])
        path = tmp_path / "layout.json"
        path.write_text(json.dumps(document))
        return path

    @pytest.mark.parametrize(
        ("change", "message"),
        [
            (lambda es: es[1].update(name="Maya"), "used twice"),
            (lambda es: es[0].update(kind="dog"), "kind must be one of"),
            (lambda es: es[0].update(id="0"), "id must be a whole number"),
            (lambda es: es[0].update(name="../x"), "name"),
            (lambda es: es[0]["frames"][0].update(box_min=[0, float("nan"), 0]), "3 finite numbers"),
            (lambda es: es[0]["frames"][0].update(frame=None), "a prop has one frame"),
            (lambda es: es[1]["frames"].append(dict(es[1]["frames"][0])), "a prop has one frame"),
            (lambda es: es[0].update(frames=[]), "non-empty"),
        ],
    )
    def test_a_broken_entity_is_named(self, tmp_path, change, message):
        with pytest.raises(FormatError, match=message):
            read_layout(self._write(tmp_path, change))


class TestEntityBoxes:
    def test_frames_without_a_box_take_the_nearest(self):
        walker = _walker(0, "Maya", [0, 1, 2, 5])
        boxes = walker.boxes(range(0, 8))
        assert boxes.shape == (8, 2, 3)
        nearest = [0, 1, 2, 2, 5, 5, 5, 5]  # frame 3 is nearer 2, 4 nearer 5
        for frame, source in enumerate(nearest):
            assert boxes[frame, 0, 0] == 0.5 * source - 0.25

    def test_a_prop_has_its_box_everywhere(self):
        boxes = _layout().entity("crate").boxes(range(3, 7))
        assert boxes.shape == (4, 2, 3) and np.allclose(boxes[:, 1], [1.25, 1.25, 0.5])

    def test_observed_frames_leave_out_interpolated_ones(self):
        assert _walker(0, "Maya", [0, 1, 2, 5]).observed_frames() == {0, 1, 5}
        assert _layout().entity("crate").observed_frames() is None
