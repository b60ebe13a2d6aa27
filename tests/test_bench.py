"""`reshoot bench` (suites, methods, scoring, results, compare), the job runner under it (serial and Ray),
and `reshoot batch` with its OpenJD template."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from reshoot.bench.compare import compare_results, paired_bootstrap
from reshoot.bench.methods import MethodInputs, load_method, method_label
from reshoot.bench.runner import TABLE_METRICS, read_results
from reshoot.bench.scoring import pixel_scores
from reshoot.cli.app import main
from reshoot.geometry.errors import FormatError, InputError
from reshoot.scaleout import Job, run_jobs

BUILTIN = ("nearest-camera", "splat", "inpaint", "model")
COPY_RENDER = """
import json, shutil, sys
from pathlib import Path

given, out = Path(sys.argv[1]), Path(sys.argv[2])
for frame in json.loads((given / "request.json").read_text())["frames"]:
    shutil.copyfile(given / "render" / f"{frame:06d}.png", out / f"{frame:06d}.png")
"""


def run(capsys, *args: str) -> tuple[int, str, str]:
    """Exit code, stdout, and stderr with its lines joined (rich wraps messages at the terminal's width)."""
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    out = capsys.readouterr()
    return exit_info.value.code, out.out, " ".join(out.err.split())


def darker_render(inputs: MethodInputs) -> np.ndarray:
    """A plug-in method for `--method test_bench:darker_render`: the render at half brightness."""
    return load_method("splat")(inputs) * 0.5


# ------------------------------------------------------------------------------------------ job runner


def _add(a: int, b: int, *previous) -> int:
    return a + b + sum(previous)


def _fail(*previous) -> int:
    raise InputError("this job is refused")


def _threads(*previous) -> int:
    import torch

    return torch.get_num_threads()


def _graph() -> list[Job]:
    return [
        Job("a", _add, (1, 2)),
        Job("b", _add, (10, 0), after=("a",)),
        Job("bad", _fail),
        Job("after-bad", _add, (0, 0), after=("bad",)),
        Job("one-thread", _threads, threads=1),
    ]


class TestRunJobs:
    def test_serial_passes_results_on_and_reports_failures(self):
        results = run_jobs(_graph())
        assert results["a"].value == 3 and results["b"].value == 13
        assert "this job is refused" in results["bad"].error
        assert results["after-bad"].error == "not run: bad failed" and results["after-bad"].value is None
        assert results["one-thread"].value == 1

    def test_jobs_larger_than_the_ray_cluster_are_refused(self):
        from reshoot.scaleout import _check_feasible

        jobs = [Job("big", _add, (1, 1), cpus=2, memory_gb=8)]
        _check_feasible(jobs, {"CPU": 2.0, "memory": 16 * 2**30})
        with pytest.raises(InputError, match="asks for 2 CPU; the Ray cluster has 1 CPU"):
            _check_feasible(jobs, {"CPU": 1.0, "memory": 16 * 2**30})
        with pytest.raises(InputError, match="asks for 8 GiB of memory; the Ray cluster has 4 GiB of memory"):
            _check_feasible(jobs, {"CPU": 4.0, "memory": 4 * 2**30})
        with pytest.raises(InputError, match="GPU"):
            _check_feasible([Job("gpu", _add, (1, 1), gpus=1)], {"CPU": 4.0, "memory": 16 * 2**30})

    def test_items_split_into_ranges_of_consecutive_items(self):
        from reshoot.scaleout import run_in_ranges

        spans = run_in_ranges(_add, 7, 3, lambda a, b: (a, b * 10))
        assert spans == [0 + 20, 2 + 50, 5 + 70]  # [0, 2), [2, 5), [5, 7)
        assert run_in_ranges(_add, 2, 5, lambda a, b: (a, b)) == [1, 3], "at most one range per item"
        assert run_in_ranges(_add, 0, 3, lambda a, b: (a, b)) == [], "no items, no ranges"
        with pytest.raises(InputError):
            run_in_ranges(_add, 4, 0, lambda a, b: (a, b))

    def test_bad_graphs_are_refused(self):
        with pytest.raises(InputError, match="appears twice"):
            run_jobs([Job("a", _add, (1, 1)), Job("a", _add, (1, 1))])
        with pytest.raises(InputError, match="not an earlier job"):
            run_jobs([Job("b", _add, (1, 1), after=("a",)), Job("a", _add, (1, 1))])
        with pytest.raises(InputError, match="--executor 'dask'"):
            run_jobs(_graph(), executor="dask")


# ------------------------------------------------------------------------------------------ methods


class TestMethods:
    def test_unknown_and_broken_methods_are_refused(self):
        with pytest.raises(InputError, match="no such method; choose from nearest-camera, splat"):
            load_method("magic")
        with pytest.raises(InputError, match="does not load"):
            load_method("no_such_module_here:method")
        with pytest.raises(InputError, match="does not load"):
            load_method("json:no_such_function")
        with pytest.raises(InputError, match="not callable"):
            load_method("math:pi")

    def test_labels(self):
        assert method_label("splat") == "splat"
        assert method_label("pkg.mod:fn") == "pkg.mod:fn"
        assert method_label("mine=run.sh {inputs} {out}") == "mine"
        assert method_label("run.sh {inputs} {out}") == "command"
        with pytest.raises(InputError, match="only {inputs} and {out} may stand in braces"):
            load_method("x=run.sh {inputs} {frame} {out}")


# ------------------------------------------------------------------------------------------ scoring


class TestPixelScores:
    def test_regions(self):
        rng = np.random.default_rng(0)
        truth = rng.random((2, 24, 32, 3))
        made = truth.copy()
        filmed = np.zeros((2, 24, 32), bool)
        filmed[:, :, :16] = True
        made[~filmed] = np.clip(made[~filmed] + 0.1, 0, 1)  # only the generated half is wrong
        scores = pixel_scores(made, truth, filmed)
        assert scores["psnr_filmed"] > 60 and scores["flip_filmed"] < scores["flip_generated"] / 2
        assert 15 < scores["psnr_generated"] < 25 and scores["flip_generated"] > 0.01
        assert scores["psnr_filmed"] > scores["psnr"] > scores["psnr_generated"]
        assert pixel_scores(made, truth, np.ones_like(filmed))["psnr_generated"] is None


# ------------------------------------------------------------------------------------------ compare


class TestCompare:
    def test_paired_bootstrap(self):
        interval, p = paired_bootstrap(np.array([0.9, 1.1, 1.0, 1.2, 0.8]))
        assert interval[0] > 0 and p < 0.01
        interval, p = paired_bootstrap(np.array([1.0, -1.0, 0.5, -0.5]))
        assert interval[0] < 0 < interval[1] and p > 0.5
        assert paired_bootstrap(np.array([2.0])) == (None, None)

    def test_pairs_rows_by_take(self):
        def doc(values):
            return {
                "results": [
                    {"method": "splat", "task": "overhead", "take": f"t{i}", "psnr": v, "error": None}
                    for i, v in enumerate(values)
                ]
            }

        (difference,) = compare_results(doc([20, 21, 22]), doc([21, 22, 23]), ("psnr",))
        assert difference.takes == 3 and difference.difference == pytest.approx(1.0)
        assert difference.interval == pytest.approx((1.0, 1.0)) and difference.p == 0.0


# ------------------------------------------------------------------------------------------ the smoke suite


@pytest.fixture(scope="module")
def smoke(tmp_path_factory, shared_data: Path):
    """`reshoot bench --suite smoke` with the four built-in methods and a command plug-in that copies the
    render: (out folder, exit code, stdout)."""
    root = tmp_path_factory.mktemp("bench")
    script = root / "copy_render.py"
    script.write_text(COPY_RENDER)
    args = ["bench", "--suite", "smoke", "--out", str(root / "out"), "--data", str(shared_data)]
    for method in BUILTIN:
        args += ["--method", method]
    args += ["--method-command", f"copy={sys.executable} {script} {{inputs}} {{out}}"]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    return root / "out", exit_info.value.code


def _metrics(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in ("seconds",)}


class TestSmokeSuite:
    def test_table_of_every_method_and_task(self, smoke):
        out, code = smoke
        assert code == 0
        document = read_results(out / "results.json")
        assert document["bench"] == "reshoot-bench/v1" and document["suite"] == "smoke"
        rows = document["results"]
        assert {(r["method"], r["task"]) for r in rows} == {
            (m, t) for m in (*BUILTIN, "copy") for t in ("overhead", "placement", "held-out-camera")
        }
        assert all(r["error"] is None for r in rows)
        for row in rows:
            assert math.isfinite(row["psnr"]) and 5 < row["psnr"] < 40
            assert 0 <= row["flip"] <= 1 and -1 <= row["ssim"] <= 1
            assert row["cross_view"] is not None
        synthetic = [r for r in rows if r["task"] != "held-out-camera"]
        assert all(r["entity_iou"] is not None and r["placement_px"] is not None for r in synthetic)
        assert all(r["found_share"] is not None for r in synthetic)
        assert all(r["psnr_filmed"] is not None and r["psnr_generated"] is not None for r in synthetic)
        table = (out / "results.md").read_text()
        assert table.count("\n| ") == 1 + 5 * 3  # the header and one line per method × task
        assert all(k in document for k in ("packages", "machine", "jobs", "wall_seconds"))
        assert all(j["seconds"] >= 0 and j["error"] is None for j in document["jobs"])

    def test_command_plugin_gets_the_render_exactly(self, smoke):
        rows = read_results(smoke[0] / "results.json")["results"]
        for task in ("overhead", "placement", "held-out-camera"):
            splat, copy = (next(r for r in rows if r["method"] == m and r["task"] == task) for m in ("splat", "copy"))
            assert {k: splat[k] for k in TABLE_METRICS} == {k: copy[k] for k in TABLE_METRICS}

    def test_methods_differ_and_the_bench_can_tell(self, smoke):
        rows = read_results(smoke[0] / "results.json")["results"]
        overhead = {r["method"]: r for r in rows if r["task"] == "overhead"}
        # Inpainting changes only the render's holes: the filmed pixels it leaves almost as they were.
        assert overhead["inpaint"]["psnr_generated"] != overhead["splat"]["psnr_generated"]
        assert len({overhead[m]["psnr"] for m in BUILTIN}) == 4

    def test_rerun_gives_the_same_numbers(self, smoke, capsys, tmp_path, shared_data):
        """The prepared takes are reused (cache); the methods rerun, one of them a module:callable plug-in,
        again: every metric is identical."""
        out, _ = smoke
        first = {
            (r["method"], r["task"], r["take"]): _metrics(r) for r in read_results(out / "results.json")["results"]
        }
        base = ["bench", "--out", str(tmp_path / "again"), "--cache", str(out / "cache"), "--data", str(shared_data)]
        methods = ["--method", "model", "--method", "test_bench:darker_render"]
        code, printed, _ = run(capsys, *base, *methods, "--task", "overhead")
        assert code == 0 and printed.strip().endswith("results.json")
        document = read_results(tmp_path / "again" / "results.json")
        prepared = [j for j in document["jobs"] if j["key"].startswith("prepare/")]
        assert len(prepared) == 1 and prepared[0]["seconds"] < 1  # the cache, although fewer tasks were chosen
        again = document["results"]
        for row in again:
            if row["method"] == "model":
                assert _metrics(row) == first[(row["method"], row["task"], row["take"])]
        darker = next(r for r in again if r["method"] == "test_bench:darker_render" and r["task"] == "overhead")
        assert darker["psnr"] < first[("splat", "overhead", darker["take"])]["psnr"] - 3

    def test_compare_prints_differences(self, smoke, capsys, tmp_path):
        results = smoke[0] / "results.json"
        changed = json.loads(results.read_text())
        for row in changed["results"]:
            row["psnr"] += 1.0
        other = tmp_path / "b.json"
        other.write_text(json.dumps(changed))
        code, printed, _ = run(capsys, "bench", "compare", str(results), str(other), "--metric", "psnr")
        assert code == 0 and "+1" in printed and "overhead" in printed
        code, _, err = run(capsys, "bench", "compare", str(results), str(other), "--metric", "beauty")
        assert code == 2 and "choose from psnr" in err


class TestBenchInputs:
    def test_bad_inputs_are_refused_before_any_work(self, capsys, tmp_path):
        code, _, err = run(capsys, "bench", "--suite", "huge", "--out", str(tmp_path))
        assert code == 2 and "choose one of smoke, v1" in err
        code, _, err = run(capsys, "bench", "--out", str(tmp_path), "--method", "magic")
        assert code == 2 and "no such method" in err
        code, _, err = run(capsys, "bench", "--out", str(tmp_path), "--task", "juggling")
        assert code == 2 and "has tasks" in err
        code, _, err = run(capsys, "bench", "--out", str(tmp_path), "--method-command", "run.sh {inputs}")
        assert code == 2 and "no such method" in err
        code, _, err = run(capsys, "bench", "--out", str(tmp_path), "--data", str(tmp_path / "nowhere"))
        assert code == 2 and "no caliscope_4cam/ there" in err
        assert not (tmp_path / "cache").exists()
        (tmp_path / "bad.json").write_text(json.dumps({"format": "reshoot/cameras", "version": 1}))
        code, _, err = run(capsys, "bench", "compare", str(tmp_path / "bad.json"), str(tmp_path / "bad.json"))
        assert code == 2 and "reshoot/bench-results" in err
        with pytest.raises(FormatError):
            read_results(tmp_path / "bad.json")


# ------------------------------------------------------------------------------------------ batch


def _takes_file(folder: Path, workspaces: dict[str, Path], until: str = "register") -> Path:
    lines = [f'[batch]\nuntil = "{until}"\n']
    for name, ws in workspaces.items():
        lines.append(f'[[takes]]\nname = "{name}"\nworkspace = "{ws}"\n')
    path = folder / "takes.toml"
    path.write_text("\n".join(lines))
    return path


class TestBatch:
    def test_bad_takes_files_are_refused(self, capsys, tmp_path):
        cases = {
            "no takes": ("[batch]\n", "no [[takes]]"),
            "bad stage": (
                '[batch]\nuntil = "paint"\n[[takes]]\nname = "a"\nworkspace = "w"\n',
                "choose one of register",
            ),
            "twice": ('[[takes]]\nname = "a"\nworkspace = "w"\n[[takes]]\nname = "a"\nworkspace = "v"\n', "used twice"),
            "no workspace": ('[[takes]]\nname = "a"\n', "give its workspace"),
            "unknown key": ('[[takes]]\nname = "a"\nworkspace = "w"\ncolour = 1\n', "no setting 'colour'"),
            "not toml": ("[[takes]\n", "not valid TOML"),
        }
        for name, (text, message) in cases.items():
            path = tmp_path / f"{name.replace(' ', '_')}.toml"
            path.write_text(text)
            code, _, err = run(capsys, "batch", str(path))
            assert code == 2 and message in err, name
        good = _takes_file(tmp_path, {"a": tmp_path / "w"})
        code, _, err = run(capsys, "batch", str(good), "--take", "zz")
        assert code == 2 and "has takes a" in err

    def test_batch_runs_each_take_like_reshoot_run(self, capsys, tmp_path, scene_workspace: Path):
        """Two copies of a registered workspace: `batch --until register` finds the stage done in both (as
        `reshoot run` would) and does nothing; a take that is not a workspace fails alone."""
        copies = {}
        for name in ("a", "b"):
            copies[name] = tmp_path / name
            shutil.copytree(scene_workspace, copies[name], symlinks=True)
        copies["missing"] = tmp_path / "nowhere"
        code, _, err = run(capsys, "batch", str(_takes_file(tmp_path, copies)))
        assert code == 1
        assert "a/register: done" in err and "b/register: done" in err
        assert "missing/register: failed" in err and "names no footage" in err

    def test_dry_run_plans_every_stage_of_every_take(self, capsys, tmp_path):
        path = _takes_file(tmp_path, {f"t{i}": tmp_path / f"w{i}" for i in range(5)}, until="check")
        code, _, err = run(capsys, "batch", str(path), "--dry-run")
        assert code == 0 and "35 job(s): 5 take(s) × 7 stage(s)" in err and "35 job(s) done" in err

    def test_openjd_template_validates_and_runs_a_step(self, capsys, tmp_path, scene_workspace: Path):
        pytest.importorskip("openjd.model")
        ws = tmp_path / "a"
        shutil.copytree(scene_workspace, ws, symlinks=True)
        path = _takes_file(tmp_path, {"a": ws}, until="layout")
        code, printed, _ = run(capsys, "batch", str(path), "--emit-openjd", str(tmp_path / "farm"))
        assert code == 0
        template = json.loads(Path(printed.strip()).read_text())
        assert [s["name"] for s in template["steps"]] == ["register", "reconstruct", "layout"]
        assert template["steps"][1]["dependencies"] == [{"dependsOn": "register"}]
        openjd = Path(sys.executable).parent / "openjd"
        if not openjd.is_file():
            pytest.skip("openjd-cli is not installed")
        done = subprocess.run(
            [str(openjd), "run", printed.strip(), "--step", "register", "--task-param", "Take=a"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert "a/register: done" in done.stdout + done.stderr


def test_copy_render_script_is_what_the_docs_show():
    """docs/bench.md shows the command plug-in used above; keep them the same."""
    docs = (Path(__file__).parents[1] / "docs" / "bench.md").read_text()
    assert textwrap.dedent(COPY_RENDER).strip() in docs


# ------------------------------------------------------------------------------------------ on Ray
# Last in the module, on one local Ray (its start costs seconds; its idle processes would slow the rest).


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray of 2 CPUs whose workers import this module's job functions from this folder."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": str(Path(__file__).parent)}})
    yield ray
    ray.shutdown()


class TestOnRay:
    def test_jobs_give_the_serial_results(self, local_ray):
        serial, on_ray = run_jobs(_graph()), run_jobs(_graph(), executor="ray")
        assert {k: (r.value, r.error) for k, r in serial.items()} == {k: (r.value, r.error) for k, r in on_ray.items()}
        assert {r.worker for r in on_ray.values()} != {r.worker for r in serial.values()}  # other processes

    def test_the_smoke_suite_gives_the_serial_numbers(self, local_ray, smoke, capsys, tmp_path, shared_data):
        out, _ = smoke
        first = {
            (r["method"], r["task"], r["take"]): _metrics(r) for r in read_results(out / "results.json")["results"]
        }
        args = ["bench", "--out", str(tmp_path), "--cache", str(out / "cache"), "--data", str(shared_data)]
        code, _, _ = run(capsys, *args, "--method", "splat", "--task", "overhead", "--executor", "ray")
        assert code == 0
        on_ray = read_results(tmp_path / "results.json")
        assert on_ray["executor"] == "ray" and len(on_ray["results"]) == 1
        for row in on_ray["results"]:
            assert _metrics(row) == first[(row["method"], row["task"], row["take"])]

    def test_batch(self, local_ray, capsys, tmp_path, scene_workspace: Path):
        copies = {"a": tmp_path / "a", "missing": tmp_path / "nowhere"}
        shutil.copytree(scene_workspace, copies["a"], symlinks=True)
        code, _, err = run(capsys, "batch", str(_takes_file(tmp_path, copies)), "--executor", "ray")
        assert code == 1 and "a/register: done" in err and "missing/register: failed" in err
