"""The stage runner (reshoot/stage.py): manifests, staleness, the lock; and the pipeline's options."""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from reshoot.geometry.errors import InputError
from reshoot.pipeline import stages
from reshoot.stage import (
    DigestCache,
    Stage,
    WorkspaceBusy,
    read_manifest,
    run_stage,
    signals_held,
    stage_state,
    workspace_lock,
)
from reshoot.workspace import Workspace


@dataclass(frozen=True)
class ToyOptions:
    factor: int = 2
    seed: int = 0
    backend: str = field(default="auto", metadata={"affects_output": False})


def _toy_stage(calls: list, fail: bool = False) -> Stage:
    """Reads WS/in.txt (a number), writes WS/out/value.txt = number × factor and WS/notes.txt."""

    def run(ws: Workspace, shot, options: ToyOptions, progress):
        calls.append(options)
        value = int((ws.root / "in.txt").read_text()) * options.factor
        if fail:
            raise KeyboardInterrupt  # interrupted before its outputs are in place
        (ws.root / "out").mkdir(exist_ok=True)
        (ws.root / "out" / "value.txt").write_text(str(value))
        (ws.root / "notes.txt").write_text("edit me")
        return value

    return Stage(
        "toy",
        False,
        ToyOptions,
        lambda ws, s, o: {"in": ws.root / "in.txt", "extra": ws.root / "extra.txt"},
        lambda ws, s: {"out": ws.root / "out", "notes": ws.root / "notes.txt"},
        run,
        editable=("notes",),
    )


@pytest.fixture
def toy(tmp_path: Path):
    (tmp_path / "in.txt").write_text("21")
    return Workspace(tmp_path)


def _state(ws: Workspace, options: ToyOptions = ToyOptions()) -> tuple[str, str]:
    state = stage_state(ws, _toy_stage([]), None, options, DigestCache(ws))
    return state.status, state.reason


class TestRunStage:
    def test_writes_outputs_then_a_manifest(self, toy):
        calls = []
        assert _state(toy)[0] == "missing"
        assert run_stage(toy, _toy_stage(calls), None, ToyOptions()) == 42
        manifest = read_manifest(toy, "toy")
        assert manifest["options"] == {"factor": 2, "seed": 0}  # backend is recorded but does not count
        assert manifest["all_options"]["backend"] == "auto"
        assert manifest["seed"] == 0 and manifest["seconds"] >= 0 and manifest["peak_rss_mib"] > 0
        assert manifest["inputs"]["extra"] == "absent" and manifest["inputs"]["in"].startswith("sha256:")
        assert set(manifest["versions"]) >= {"reshoot", "python", "torch"}
        assert _state(toy) == ("done", "")

    def test_an_option_that_changes_the_result_makes_it_stale(self, toy):
        run_stage(toy, _toy_stage([]), None, ToyOptions())
        assert _state(toy, ToyOptions(factor=3)) == ("stale", "option factor changed (2 → 3)")
        assert _state(toy, ToyOptions(backend="cpu"))[0] == "done"

    def test_a_changed_or_new_input_makes_it_stale(self, toy):
        run_stage(toy, _toy_stage([]), None, ToyOptions())
        (toy.root / "in.txt").write_text("22")
        assert _state(toy) == ("stale", "its input in changed")
        (toy.root / "in.txt").write_text("21")
        assert _state(toy)[0] == "done"  # the same bytes again
        (toy.root / "extra.txt").write_text("now here")
        assert _state(toy) == ("stale", "its input extra changed")

    def test_outputs_changed_after_the_run(self, toy):
        run_stage(toy, _toy_stage([]), None, ToyOptions())
        (toy.root / "notes.txt").write_text("a person's edit")  # editable: still done
        assert _state(toy)[0] == "done"
        (toy.root / "out" / "value.txt").write_text("43")
        assert _state(toy) == ("stale", "its output out changed since it ran")
        (toy.root / "out" / "value.txt").unlink()
        assert _state(toy) == ("stale", "its output out changed since it ran")
        (toy.root / "out").rmdir()
        assert _state(toy) == ("missing", "out is missing")

    def test_outputs_without_a_manifest_are_stale(self, toy):
        run_stage(toy, _toy_stage([]), None, ToyOptions())
        toy.manifest("toy").unlink()
        assert _state(toy)[0] == "stale"
        toy.manifest("toy").write_text("{ damaged")
        assert _state(toy)[0] == "stale"

    def test_an_interrupted_run_keeps_the_previous_manifest(self, toy):
        run_stage(toy, _toy_stage([]), None, ToyOptions())
        before = toy.manifest("toy").read_bytes()
        (toy.root / "in.txt").write_text("5")
        with pytest.raises(KeyboardInterrupt):
            run_stage(toy, _toy_stage([], fail=True), None, ToyOptions())
        assert toy.manifest("toy").read_bytes() == before
        assert _state(toy) == ("stale", "its input in changed")

    def test_digests_are_cached_by_size_and_time(self, toy, monkeypatch):
        cache = DigestCache(toy)
        first = cache.of(toy.root / "in.txt")
        cache.save()
        opened = []
        real_open = open
        monkeypatch.setattr("builtins.open", lambda p, *a, **k: opened.append(p) or real_open(p, *a, **k))
        assert DigestCache(toy).of(toy.root / "in.txt") == first
        assert str(toy.root / "in.txt") not in map(str, opened)


class TestLock:
    def test_a_second_writer_is_refused_with_who_holds_it(self, toy):
        with workspace_lock(toy, command="reshoot reconstruct"):
            with pytest.raises(WorkspaceBusy, match=r"another reshoot \(pid \d+: reshoot reconstruct"):
                with workspace_lock(toy, wait_seconds=0.3):
                    pass
        with workspace_lock(toy):  # released
            pass

    def test_the_lock_dies_with_its_process(self, toy):
        pid = os.fork()
        if pid == 0:  # the child takes the lock and is killed holding it
            with workspace_lock(toy):
                os.kill(os.getpid(), 9)
        os.waitpid(pid, 0)
        with workspace_lock(toy):
            pass


class TestPipelineOptions:
    def test_settings_convert_to_the_options_types(self):
        from reshoot.pipeline import CheckOptions, make_options
        from reshoot.reconstruct import ReconstructOptions

        options = make_options(
            ReconstructOptions,
            {"set_iterations": "800", "frames": "0:4", "use_survey": "false", "cameras": "a_wide,b_medium"},
            "test",
        )
        assert (options.set_iterations, options.frames, options.use_survey, options.cameras) == (
            800,
            (0, 4),
            False,
            ("a_wide", "b_medium"),
        )
        assert make_options(
            CheckOptions, {"thresholds": ["agreement_error=0.2"], "truth": "none"}, "t"
        ) == CheckOptions(thresholds=("agreement_error=0.2",))

    @pytest.mark.parametrize(
        "values, message",
        [
            ({"set_iteration": 5}, "has no setting 'set_iteration'"),
            ({"set_iterations": "many"}, "set_iterations = 'many' is not"),
            ({"set_iterations": 2.5}, "is not"),
            ({"voxel_size": 0.0}, "voxel_size must be positive"),
        ],
    )
    def test_bad_settings_say_what_is_wrong(self, values, message):
        from reshoot.pipeline import make_options
        from reshoot.reconstruct import ReconstructOptions

        with pytest.raises(InputError, match=message):
            make_options(ReconstructOptions, values, "test")

    def test_register_settings_become_a_scale_hint(self):
        from reshoot.pipeline import check_stage_settings, stage_options
        from reshoot.workspace import parse_stage_settings

        values = parse_stage_settings(["register.camera_height=1.6", "reconstruct.set_iterations=800"])
        assert values == {"register": {"camera_height": 1.6}, "reconstruct": {"set_iterations": 800}}
        check_stage_settings(values)
        options = stage_options("register", values)
        assert options.scale.camera_heights == {"*": 1.6}
        with pytest.raises(InputError, match="unknown stage 'reconstruction'"):
            check_stage_settings({"reconstruction": {}})
        with pytest.raises(InputError, match="positive"):
            check_stage_settings({"register": {"camera_height": -1.6}})
        with pytest.raises(InputError, match="STAGE.SETTING=VALUE"):
            parse_stage_settings(["set_iterations=5"])

    def test_shot_arguments(self):
        from reshoot.pipeline import parse_shot

        assert parse_shot("overhead wide") == ("overhead_wide", dataclasses.replace(parse_shot("x=overhead wide")[1]))
        assert parse_shot("top=overhead wide")[0] == "top"
        with pytest.raises(InputError, match="describe the shot"):
            parse_shot("top=  ")


def test_manifest_is_a_versioned_document(toy):
    run_stage(toy, _toy_stage([]), None, ToyOptions())
    document = json.loads(toy.manifest("toy").read_text())
    assert (document["format"], document["version"], document["stage"]) == ("reshoot/manifest", 1, "toy")


def test_leftovers_of_a_killed_write_are_removed_before_the_stage_runs(toy):
    from reshoot.geometry.files import _create_sibling

    (toy.root / "out").mkdir()
    left = [
        _create_sibling(toy.root / "out", ".tmp", directory=True),
        toy.root / ".out.abc123_x.old",
        _create_sibling(toy.root / "notes.txt", ".tmp.txt", directory=False),
    ]
    left[1].mkdir()
    keep = toy.root / ".outer.abc.tmp"  # another name's: kept
    keep.write_text("")
    run_stage(toy, _toy_stage([]), None, ToyOptions())
    assert not any(p.exists() for p in left) and keep.exists()


class TestSignalsHeld:
    """A stage's modules are imported with Ctrl-C and SIGTERM held back: an interrupt raised inside an
    import that torch's C++ calls back into aborts the process (exit -6) instead of exiting 130."""

    def test_an_interrupt_during_the_block_lands_after_it(self):
        """Also with another thread running, which the kernel may hand the signal to. The handler is the
        test's own, as the CLI's (an earlier test in this process may have left another installed)."""
        calls = []

        def interrupted(signum, frame):
            calls.append(signum)
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGINT, interrupted)
        finished = []
        other = threading.Thread(target=time.sleep, args=(0.5,))
        other.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                with signals_held():
                    for _ in range(3):
                        os.kill(os.getpid(), signal.SIGINT)
                        time.sleep(0.05)  # a signal that is not held is handled within this
                    finished.append(True)
            assert signal.getsignal(signal.SIGINT) is interrupted  # restored
        finally:
            signal.signal(signal.SIGINT, previous)
            other.join()
        assert finished == [True] and calls == [signal.SIGINT]

    def test_the_runner_imports_a_stages_modules_before_it_runs(self, toy: Workspace):
        calls: list = []
        stage = dataclasses.replace(_toy_stage(calls), modules=("reshoot.no_such_module",))
        with pytest.raises(ModuleNotFoundError):
            run_stage(toy, stage, None, ToyOptions())
        assert calls == [] and not (toy.root / "out").exists()

    def test_every_pipeline_stage_names_modules_that_import(self):
        for stage in stages().values():
            assert stage.modules, stage.name
            for module in stage.modules:
                importlib.import_module(module)
