"""Synthesis engines: the registry and plug-ins, filmed pixels kept, the `render` engine, and the `diffusers`
engine run end to end on a tiny Wan2.1 VACE model built here from configs with random weights (no
download, no tokenizer file fetched: its tokenizer is a word-level one made in the test)."""

from __future__ import annotations

import json
import shutil
from importlib import metadata
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch

from conftest import adaptation_budget
from reshoot.conditioning import read_conditioning_frame
from reshoot.engines import EngineOptions, ShotFrames, engine_names, load_engine
from reshoot.engines.diffusers_vace import model_frame_count, window_starts, working_grid
from reshoot.engines.keep import composite, feathered
from reshoot.engines.unified import UnifiedEngine
from reshoot.geometry.errors import InputError
from reshoot.synthesis import synthesize

WORDS = "<pad> </s> <unk> overhead wide high angle shot of the set in view a b c d".split()


def tiny_wan_vace(folder: Path) -> Path:
    """A Wan2.1 VACE pipeline of a few thousand random parameters, saved in diffusers' layout."""
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanVACEPipeline, WanVACETransformer3DModel
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, UMT5Config, UMT5EncoderModel

    torch.manual_seed(0)
    vae = AutoencoderKLWan(
        base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True]
    )
    transformer = WanVACETransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=12,
        in_channels=16,
        out_channels=16,
        text_dim=32,
        freq_dim=256,
        ffn_dim=32,
        num_layers=2,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        rope_max_seq_len=1024,  # positions for frames of any size the tests use
        vace_layers=[0],
        vace_in_channels=96,
    )
    text_encoder = UMT5EncoderModel(
        UMT5Config(vocab_size=len(WORDS), d_model=32, d_kv=8, d_ff=64, num_layers=1, num_heads=4)
    )
    words = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    words.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=words, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    scheduler = UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0)
    pipe = WanVACEPipeline(
        tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, scheduler=scheduler, transformer=transformer
    )
    pipe.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def shot_ws(conditioned_shot_workspace: Path) -> Path:
    return conditioned_shot_workspace


@pytest.fixture(scope="module")
def wan_weights(tmp_path_factory) -> Path:
    return tiny_wan_vace(tmp_path_factory.mktemp("wan") / "tiny-wan-vace")


def _copy(ws: Path, tmp_path: Path) -> Path:
    shutil.copytree(ws, tmp_path / "ws", symlinks=True)
    return tmp_path / "ws"


def _frames(ws: Path) -> np.ndarray:
    return np.stack([iio.imread(p) for p in sorted((ws / "shots" / "top" / "frames").glob("*.png"))])


def _generated(ws: Path) -> np.ndarray:
    import OpenEXR

    out = []
    for path in sorted((ws / "shots" / "top" / "exr").glob("*.exr")):
        with OpenEXR.File(str(path), separate_channels=True) as exr:
            out.append(np.array(exr.channels()["generated"].pixels, dtype=np.float32))
    return np.stack(out)


def _renders(ws: Path) -> np.ndarray:
    return np.stack([read_conditioning_frame(ws / "shots" / "top" / "conditioning", f).rgb for f in range(5)])


class EchoEngine:
    """A plug-in engine: the render with its colours inverted."""

    name = "echo"

    def check_inputs(self, options: EngineOptions) -> None:
        return None

    def synthesize(self, conditioning, options, progress) -> ShotFrames:
        return ShotFrames(1 - conditioning.rgb, torch.ones(conditioning.alpha.shape), {"echo": True})


class TestRegistry:
    def test_builtin_engines_load_by_name(self):
        assert engine_names()[:3] == ["render", "unified", "diffusers"]
        assert [load_engine(n).name for n in ("render", "unified", "diffusers")] == ["render", "unified", "diffusers"]

    def test_unknown_engine_is_refused_with_the_names(self):
        with pytest.raises(InputError, match="render, unified, diffusers"):
            load_engine("nope")

    def test_plugin_from_an_entry_point(self, monkeypatch):
        points = [
            metadata.EntryPoint("echo", "test_engines:EchoEngine", "reshoot.engines"),
            metadata.EntryPoint("broken", "test_engines:WORDS", "reshoot.engines"),
            metadata.EntryPoint("render", "test_engines:EchoEngine", "reshoot.engines"),  # cannot take a builtin's name
        ]
        monkeypatch.setattr(metadata, "entry_points", lambda group: [p for p in points if p.group == group])
        assert engine_names() == ["render", "unified", "diffusers", "broken", "echo"]
        assert load_engine("echo").name == "echo" and load_engine("render").name == "render"
        with pytest.raises(InputError, match="did not make an engine"):
            load_engine("broken")

    def test_bad_options_are_refused(self):
        with pytest.raises(InputError, match="--memory"):
            EngineOptions(memory="huge")
        with pytest.raises(InputError, match="--steps"):
            EngineOptions(steps=0)


class TestKeep:
    def test_feathered_ramps_inward_and_stays_inside(self):
        region = np.zeros((20, 20), bool)
        region[5:15, 5:15] = True
        w = feathered(region, 4.0)
        assert (w[~region] == 0).all() and w[10, 10] == 1.0
        assert 0 < w[5, 10] < w[6, 10] < w[8, 10] <= 1.0  # rising from the edge
        assert (feathered(np.zeros((4, 4), bool)) == 0).all()

    def test_colour_disagreement_with_cameras_of_two_sizes(self):
        """The shot camera's own twin at full and at half size sees what the render shows: no disagreement
        where either holds the point; a frame of another colour disagrees by that much."""
        from reshoot.engines.keep import colour_disagreement
        from reshoot.geometry.camera import Camera

        def camera(name: str, width: int, height: int) -> Camera:
            f = 0.8 * width
            K = [[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1]]
            return Camera.create([name], [K], torch.eye(4)[None], [width], [height])

        g = torch.Generator().manual_seed(0)
        rgb = torch.rand(1, 3, 24, 32, generator=g).repeat_interleave(2, 2).repeat_interleave(2, 3)  # 2x2 blocks
        full = rgb[0].permute(1, 2, 0)  # [48, 64, 3]
        half = torch.nn.functional.avg_pool2d(rgb, 2)[0].permute(1, 2, 0)  # [24, 32, 3], the same picture
        depth = torch.full((48, 64), 3.0)
        shot = camera("shot", 64, 48)
        sources = Camera.cat([camera("a", 64, 48), camera("b", 32, 24)])
        agree = colour_disagreement(full, depth, shot, sources, [full, half])
        assert float(agree.max()) < 1e-5
        off = colour_disagreement(full, depth, shot, sources, [torch.ones_like(full), torch.zeros_like(half)])
        torch.testing.assert_close(off, torch.minimum((1 - full).mean(-1), full.mean(-1)), atol=1e-5, rtol=0)
        assert bool(torch.isinf(colour_disagreement(full, torch.zeros(48, 64), shot, sources, [full, half])).all())

    def test_composite_takes_the_render_where_kept(self):
        render, made = torch.zeros(1, 2, 2, 3), torch.ones(1, 2, 2, 3)
        keep = torch.tensor([[[1.0, 0.0], [0.25, 0.5]]])
        frames, generated = composite(render, made, torch.ones(1, 2, 2), keep)
        torch.testing.assert_close(frames[..., 0], 1 - keep)
        torch.testing.assert_close(generated, 1 - keep)


class TestEnginesEndToEnd:
    def test_render_engine_writes_the_render(self, shot_ws: Path, tmp_path: Path):
        ws = _copy(shot_ws, tmp_path)
        summary = synthesize(ws, "top", "render", EngineOptions(device="cpu"))
        assert summary.engine == "render"
        assert np.abs(_frames(ws) / 255.0 - _renders(ws)).max() <= 0.5 / 255 + 1e-6
        assert (_generated(ws) == 0).all()
        record = json.loads((ws / "shots" / "top" / "synthesis.json").read_text())
        assert record["engine"] == "render" and record["generated_share"] == [0.0] * 5

    def test_filmed_pixels_agreeing_with_the_footage_are_kept(self, shot_ws: Path, tmp_path: Path, monkeypatch):
        """A plug-in that inverts every colour: where kept the shot is the render, elsewhere the plug-in's."""
        monkeypatch.setattr(
            metadata,
            "entry_points",
            lambda group: [metadata.EntryPoint("echo", "test_engines:EchoEngine", "reshoot.engines")],
        )
        ws = _copy(shot_ws, tmp_path)
        synthesize(ws, "top", "echo", EngineOptions(device="cpu"))
        record = json.loads((ws / "shots" / "top" / "synthesis.json").read_text())
        assert record["echo"] is True  # the engine's record is kept
        kept, filmed = np.array(record["kept_share"]), np.array(record["filmed_share"])
        assert (kept > 0.05).all() and (kept <= filmed).all()
        frames, render, generated = _frames(ws) / 255.0, _renders(ws), _generated(ws)
        np.testing.assert_allclose(np.array(record["generated_share"]), 1 - kept, atol=2e-3)
        expected = (1 - generated[..., None]) * render + generated[..., None] * (1 - render)
        assert np.abs(frames - expected).max() < 2 / 255  # 8-bit PNG, half-float weights
        # nothing outside the filmed mask is kept
        filmed_mask = np.stack(
            [iio.imread(ws / "shots" / "top" / "conditioning" / "filmed" / f"{f:06d}.png") > 0 for f in range(5)]
        )
        assert (generated[~filmed_mask] > 0.999).all()
        synthesize(ws, "top", "echo", EngineOptions(device="cpu"), keep_filmed=False)
        assert np.abs(_frames(ws) / 255.0 - (1 - render)).max() <= 0.5 / 255 + 1e-6


MADE: dict[tuple[int, str], torch.Tensor] = {}


class CaptureEngine(UnifiedEngine):
    """The unified engine, keeping its float frames per (ranges, executor) for the test below."""

    name = "capture"

    def synthesize(self, conditioning, options, progress) -> ShotFrames:
        made = super().synthesize(conditioning, options, progress)
        MADE[options.ranges, options.executor] = made.frames
        return made


class TestFrameRanges:
    def test_ranges_give_the_same_frames_serially_and_on_ray(self, shot_ws: Path, tmp_path: Path, monkeypatch):
        """The 5-frame shot is two windows: split into two ranges, a job each, the frames are those of one
        loop to float rounding (each range runs on one thread), and the same to the bit on Ray."""
        installed = metadata.entry_points
        capture = [metadata.EntryPoint("capture", "test_engines:CaptureEngine", "reshoot.engines")]
        monkeypatch.setattr(
            metadata, "entry_points", lambda group: capture if group == "reshoot.engines" else installed(group=group)
        )
        ws = _copy(shot_ws, tmp_path)
        synthesize(ws, "top", "capture", EngineOptions(device="cpu"))
        synthesize(ws, "top", "capture", EngineOptions(device="cpu", ranges=2))
        record = json.loads((ws / "shots" / "top" / "synthesis.json").read_text())
        assert record["ranges"] == 2 and len(record["windows"]) == 2
        assert (MADE[2, "serial"] - MADE[1, "serial"]).abs().max() < 1e-5
        pytest.importorskip("ray")
        synthesize(ws, "top", "capture", EngineOptions(device="cpu", ranges=2, executor="ray"))
        assert torch.equal(MADE[2, "ray"], MADE[2, "serial"])

    def test_bad_ranges_are_refused(self):
        with pytest.raises(InputError, match="--ranges 0"):
            EngineOptions(ranges=0)
        with pytest.raises(InputError, match="--executor 'dask'"):
            EngineOptions(executor="dask")


def test_diffusers_windows_and_sizes():
    assert [model_frame_count(n) for n in (1, 2, 5, 6, 81)] == [1, 5, 5, 9, 81]
    assert window_starts(5, 81, 8) == [(0, 5)]
    assert window_starts(10, 4, 1) == [(0, 4), (3, 7), (6, 10)]
    assert working_grid(320, 180) == (320, 176) and working_grid(7, 5) == (16, 16)
    w, h = working_grid(1920, 1080)
    assert w % 16 == h % 16 == 0 and abs(w * h - 832 * 480) / (832 * 480) < 0.05


class TestDiffusersEngine:
    def test_weights_are_checked_before_anything_runs(self, tmp_path: Path):
        engine = load_engine("diffusers")
        with pytest.raises(InputError, match="needs --weights"):
            engine.check_inputs(EngineOptions())
        with pytest.raises(InputError, match="no such folder"):
            engine.check_inputs(EngineOptions(weights=tmp_path / "none"))
        with pytest.raises(InputError, match="no model_index.json"):
            engine.check_inputs(EngineOptions(weights=tmp_path))
        (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
        with pytest.raises(InputError, match="WanVACEPipeline"):
            engine.check_inputs(EngineOptions(weights=tmp_path))

    def test_tiny_wan_vace_end_to_end(self, shot_ws: Path, wan_weights: Path, tmp_path: Path):
        ws = _copy(shot_ws, tmp_path)
        options = EngineOptions(weights=wan_weights, device="cpu", seed=3, steps=2, window=3, memory="high")
        synthesize(ws, "top", "diffusers", options)
        record = json.loads((ws / "shots" / "top" / "synthesis.json").read_text())
        assert record["engine"] == "diffusers" and record["family"] == "Wan2.1 VACE"
        assert record["windows"] == [[0, 2], [2, 4]]  # 3 frames, overlap 1: the second is given the first's last
        assert record["working_size"] == [320, 176] and record["seed"] == 3 and record["steps"] == 2
        assert record["weights_digest"].startswith("sha256:") and record["memory"] == "high"
        assert "overhead wide" in record["prompt"] and "In view:" in record["prompt"]
        first = _frames(ws)
        assert first.shape == (5, 180, 320, 3)
        generated, render = _generated(ws), _renders(ws)
        kept = generated < 1e-3
        assert kept.any() and (~kept).any()
        assert np.abs(first / 255.0 - render)[kept].max() < 2 / 255  # filmed pixels kept
        assert np.abs(first / 255.0 - render)[generated > 0.999].mean() > 0.02  # the rest is the model's
        # The same seed makes the same frames; the low tier's tiled VAE decoding makes nearly the same;
        # another seed makes others.
        synthesize(ws, "top", "diffusers", options)
        assert np.array_equal(_frames(ws), first)
        synthesize(ws, "top", "diffusers", EngineOptions(**{**options.__dict__, "memory": "low"}))
        assert np.abs(_frames(ws).astype(int) - first).mean() < 1.0
        low = json.loads((ws / "shots" / "top" / "synthesis.json").read_text())
        assert low["memory"] == "low" and "vae tiling" in low["memory_measures"]
        synthesize(ws, "top", "diffusers", EngineOptions(**{**options.__dict__, "seed": 4, "memory": "medium"}))
        assert np.abs(_frames(ws).astype(int) - first).max() > 10

    def test_cli_runs_the_diffusers_engine(self, shot_ws: Path, wan_weights: Path, tmp_path: Path):
        from reshoot.cli.app import main

        ws = _copy(shot_ws, tmp_path)
        args = ["synthesize", str(ws), "top", "--engine", "diffusers", "--weights", str(wan_weights)]
        with pytest.raises(SystemExit) as exit_:
            main([*args, "--steps", "1", "--device", "cpu", "--prompt", "a wide shot"])
        assert exit_.value.code == 0
        record = json.loads((ws / "shots" / "top" / "synthesis.json").read_text())
        assert record["prompt"] == "a wide shot" and record["options"]["steps"] == 1
        with pytest.raises(SystemExit) as exit_:
            main(["synthesize", str(ws), "top", "--engine", "diffusers", "--device", "cpu"])
        assert exit_.value.code != 0
        with pytest.raises(SystemExit) as exit_:  # a LoRA needs the take and the base model
            main(["train", "--engine", "diffusers", "--adapt", str(ws)])
        assert exit_.value.code == 2


class TestSamples:
    def test_samples_and_pick(self, shot_ws: Path, wan_weights: Path, tmp_path: Path):
        """--samples 2 writes samples/0 and samples/1 (different seeds), sample 0 is the shot's; `reshoot pick`
        makes sample 1 the shot's and the synthesize stage stays done."""
        from reshoot.cli.app import main
        from reshoot.pipeline import SynthesizeOptions, stages
        from reshoot.stage import DigestCache, stage_state
        from reshoot.workspace import Workspace

        def run(*args) -> int:
            with pytest.raises(SystemExit) as exit_:
                main([str(a) for a in args])
            return exit_.value.code

        ws = _copy(shot_ws, tmp_path)
        shot = Workspace(ws).shot("top")
        options = ["--engine", "diffusers", "--weights", wan_weights, "--steps", "1", "--device", "cpu"]
        assert run("synthesize", ws, "top", *options, "--samples", "2", "--seed", "7") == 0
        record = json.loads(shot.synthesis.read_text())
        assert record["samples"] == {**record["samples"], "count": 2, "chosen": 0, "seeds": [7, 8]}
        samples = [np.stack([iio.imread(p) for p in sorted(shot.sample(k)[0].glob("*.png"))]) for k in range(2)]
        assert np.array_equal(_frames(ws), samples[0]) and np.abs(samples[0].astype(int) - samples[1]).max() > 10
        assert len(list(shot.sample(1)[1].glob("*.exr"))) == 5 and shot.sample(1)[2].is_file()

        assert run("pick", ws, "top", "1") == 0
        assert np.array_equal(_frames(ws), samples[1])
        assert json.loads(shot.synthesis.read_text())["samples"]["chosen"] == 1
        picked = SynthesizeOptions(checkpoint=wan_weights, engine="diffusers", seed=7, steps=1, samples=2, device="cpu")
        state = stage_state(Workspace(ws), stages()["synthesize"], "top", picked, DigestCache(Workspace(ws)))
        assert state.status == "done", state.reason  # a pick is not a change that makes the stage run again

        assert run("pick", ws, "top", "2") == 2  # no such sample
        assert run("synthesize", ws, "top", *options) == 0  # one sample: the earlier run's samples go
        assert not shot.samples.exists()
        assert run("pick", ws, "top", "0") == 2

    def test_a_deterministic_engine_refuses_samples(self, shot_ws: Path, tmp_path: Path):
        ws = _copy(shot_ws, tmp_path)
        with pytest.raises(InputError, match="alike"):
            synthesize(ws, "top", "unified", EngineOptions(device="cpu"), samples=2)
        assert not (ws / "shots" / "top" / "samples").exists()


class TestDiffusersAdaptation:
    def test_lora_learned_on_a_held_out_camera_and_used(self, shot_ws: Path, wan_weights: Path, tmp_path: Path):
        from safetensors.torch import load_file

        from reshoot.engines.diffusers_adapt import LoraOptions, adapt_lora

        ws = _copy(shot_ws, tmp_path)
        budget = adaptation_budget()
        options = LoraOptions(
            weights=wan_weights,
            held_out=("c_medium",),
            steps=3,
            lr=1e-2,
            rank=4,
            clip_frames=5,
            working_pixels=160 * 90,
            device="cpu",
            reconstruct=budget,
        )
        summary = adapt_lora(ws, options)
        assert summary.out == ws / "model" / "diffusers_lora" and summary.steps == 3
        record = json.loads((summary.out / "adapter.json").read_text())
        assert record["held_out"] == ["c_medium"] and record["base_weights_digest"].startswith("sha256:")
        assert np.isfinite([record["first_loss"], record["last_loss"]]).all()
        lora = load_file(str(summary.out / "pytorch_lora_weights.safetensors"))
        ups = [v for k, v in lora.items() if "lora_B" in k]
        assert ups and any(float(v.abs().max()) > 0 for v in ups)  # B starts at zero: the steps moved it

        base = EngineOptions(weights=wan_weights, device="cpu", steps=2, memory="high")
        synthesize(ws, "top", "diffusers", base, keep_filmed=False)
        plain = _frames(ws)
        synthesize(
            ws, "top", "diffusers", EngineOptions(**{**base.__dict__, "adapter": summary.out}), keep_filmed=False
        )
        assert json.loads((ws / "shots" / "top" / "synthesis.json").read_text())["adapter"] == str(summary.out)
        assert np.abs(_frames(ws).astype(int) - plain).max() > 0  # the adapter changes the model
        with pytest.raises(InputError, match="--adapter"):
            synthesize(ws, "top", "diffusers", EngineOptions(**{**base.__dict__, "adapter": tmp_path}))

    def test_sensitive_footage_never_trains_a_lora(self, scene_take: Path, wan_weights: Path, tmp_path: Path):
        from reshoot.engines.diffusers_adapt import LoraOptions, adapt_lora
        from reshoot.workspace import init_workspace

        ws = tmp_path / "private"
        init_workspace(ws, scene_take / "footage", sensitive=True)
        with pytest.raises(InputError, match="--sensitive"):
            adapt_lora(ws, LoraOptions(weights=wan_weights))
        assert not (ws / "model").exists()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_tiny_wan_vace_on_cuda_with_offload(shot_ws: Path, wan_weights: Path, tmp_path: Path):
    ws = _copy(shot_ws, tmp_path)
    for memory in ("high", "medium", "low"):
        synthesize(ws, "top", "diffusers", EngineOptions(weights=wan_weights, device="cuda", steps=2, memory=memory))
        record = json.loads((ws / "shots" / "top" / "synthesis.json").read_text())
        assert record["device"].startswith("cuda") and record["peak_vram_mib"] > 0
        assert record["dtype"] in ("bfloat16", "float16")
