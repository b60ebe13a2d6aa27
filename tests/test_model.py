"""The unified video model: shapes, rays, determinism, learning, checkpoints, windows (CPU, tiny config)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from reshoot.geometry.camera import Camera
from reshoot.geometry.conventions import look_at
from reshoot.geometry.errors import InputError
from reshoot.model.checkpoint import CheckpointError, from_pretrained, save_checkpoint
from reshoot.model.config import CONFIGS, ModelConfig
from reshoot.model.inference import blend_weights, plan_windows, working_size
from reshoot.model.inputs import make_window, plucker_rays, resized_camera, rig_frame
from reshoot.model.network import UnifiedVideoModel
from reshoot.model.training import TrainOptions, train_model

# Small enough for fast CPU steps, same architecture as tiny.
SMALL = dataclasses.replace(
    CONFIGS["tiny"], dim=32, depth=2, heads=2, patch=8, window=2, head_features=4, refine_channels=8
)


def _cameras(count: int, width: int, height: int, seed: int) -> Camera:
    rng = np.random.default_rng(seed)
    poses = [
        look_at(rng.uniform(-3, 3, 3) + np.array([0, 0, 3.0]), rng.uniform(-0.5, 0.5, 3)).numpy() for _ in range(count)
    ]
    K = np.array([[0.8 * width, 0, (width - 1) / 2], [0, 0.8 * width, (height - 1) / 2], [0, 0, 1]])
    return Camera.create(
        [f"c{i}" for i in range(count)],
        np.stack([K] * count),
        np.stack(poses),
        [width] * count,
        [height] * count,
        [[0.0] * 5] * count,
    )


def _window(seed: int = 0, t: int = 2, size=(40, 24), views: int = 2, scale: float = 0.5):
    width, height = size
    rng = torch.Generator().manual_seed(seed)
    targets = _cameras(t, width, height, seed)
    sources = _cameras(views, 64, 48, seed + 100)
    return make_window(
        targets,
        torch.rand(t, height, width, 3, generator=rng),
        torch.rand(t, height, width, generator=rng) * 4,
        torch.rand(t, height, width, generator=rng),
        torch.randint(-1, 5, (t, height, width), generator=rng),
        torch.arange(t, dtype=torch.float64),
        sources,
        torch.rand(views, 48, 64, 3, generator=rng),
        torch.zeros(views, dtype=torch.float64),
        scale,
    )


def test_forward_backward_shapes_and_untrained_model_returns_the_render():
    torch.manual_seed(0)
    model = UnifiedVideoModel(SMALL)
    window = _window()
    out = model(window)
    assert out.shape == window.render_rgb.shape == (1, 2, 3, 24, 40)
    assert window.source_rgb.shape[-2:] == (13, 18)  # a quarter (0.5²) of the target's 960 pixels, 4:3 aspect
    assert torch.equal(out, window.render_rgb)  # the correction's last layer starts at zero
    target = torch.rand_like(out)
    (out - target).square().mean().backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert all(g is not None for g in grads.values())
    assert grads["refine.2.weight"].abs().sum() > 0


def test_tiny_config_sizes_any_frame_size_and_batch():
    torch.manual_seed(0)
    model = UnifiedVideoModel(CONFIGS["tiny"]).eval()
    a, b = _window(1, t=3, size=(50, 30)), _window(2, t=3, size=(50, 30))
    from reshoot.model.inputs import stack_windows

    with torch.no_grad():
        both = model(stack_windows([a, b]))
        one = model(a)
    assert both.shape == (2, 3, 3, 30, 50)
    assert torch.allclose(both[:1], one, atol=1e-5)


def test_plucker_rays_are_unit_directions_with_moments_about_the_rig_centre():
    cams = _cameras(2, 32, 20, 3)
    frame = rig_frame(cams)
    rays = plucker_rays(cams, frame)
    assert rays.shape == (2, 6, 20, 32)
    d, m = rays[:, :3], rays[:, 3:]
    assert torch.allclose(d.norm(dim=1), torch.ones(2, 20, 32), atol=1e-5)
    assert (d * m).sum(dim=1).abs().max() < 1e-5  # a moment is orthogonal to its direction
    origin = (cams.centers[0].float() - frame.centre) / frame.scale
    assert torch.allclose(m[0, :, 5, 7], torch.cross(origin, d[0, :, 5, 7], dim=0), atol=1e-5)
    # the principal point's ray is the optical axis (third row of the rotation)
    axis = cams.cam_from_world[1, 2, :3].float()
    cx, cy = int(cams.K[1, 0, 2]), int(cams.K[1, 1, 2])  # (15.5, 9.5): between four pixel centres
    centre = torch.nn.functional.normalize(d[1, :, cy : cy + 2, cx : cx + 2].mean(dim=(1, 2)), dim=0)
    assert torch.allclose(centre, axis, atol=1e-3)
    # resizing the camera keeps the rays of the same scene points
    half = plucker_rays(resized_camera(cams, 16, 10), frame)
    assert torch.allclose(half[:, :3, 0, 0], 0.5 * (d[:, :, 0, 0] + d[:, :, 1, 1]), atol=2e-2)


def test_rig_frame_makes_the_inputs_scale_free():
    cams = _cameras(3, 32, 20, 4)
    bigger = dataclasses.replace(cams, cam_from_world=cams.cam_from_world.clone())
    bigger.cam_from_world[:, :3, 3] *= 10  # the same rig in centimetres-like units
    assert torch.allclose(plucker_rays(cams, rig_frame(cams)), plucker_rays(bigger, rig_frame(bigger)), atol=1e-4)


def test_same_seed_same_weights_and_outputs():
    torch.manual_seed(5)
    a = UnifiedVideoModel(SMALL)
    torch.manual_seed(5)
    b = UnifiedVideoModel(SMALL)
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        assert torch.equal(p, q), name


def _fixed_episodes(window, truth):
    return lambda rng: (window, truth)


def test_training_steps_lower_the_loss_on_a_fixed_batch(tmp_path):
    window = _window(7)
    truth = (window.render_rgb * 0.5 + 0.3).clamp(0, 1)  # a consistent correction to learn
    summary = train_model(
        SMALL,
        _fixed_episodes(window, truth),
        TrainOptions(steps=60, lr=3e-3, warmup=5, checkpoint_every=60, device="cpu"),
        tmp_path / "ckpt",
    )
    assert summary.last_loss < 0.5 * summary.first_loss
    model = from_pretrained(tmp_path / "ckpt")
    with torch.no_grad():
        after = (model(window) - truth).abs().mean()
    assert after < 0.5 * (window.render_rgb - truth).abs().mean()


def test_training_is_deterministic_and_resumes_to_the_same_weights(tmp_path):
    def episodes(rng):
        return _window(int(rng.integers(1000))), torch.rand(1, 2, 3, 24, 40, generator=torch.Generator().manual_seed(1))

    options = TrainOptions(steps=6, lr=1e-3, warmup=2, checkpoint_every=2, device="cpu", seed=3)
    train_model(SMALL, episodes, options, tmp_path / "a")
    train_model(SMALL, episodes, options, tmp_path / "b", stop_after=4)
    resumed = train_model(SMALL, episodes, options, tmp_path / "b")
    assert resumed.resumed_from == 4
    a, b = from_pretrained(tmp_path / "a"), from_pretrained(tmp_path / "b")
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        assert torch.equal(p, q), name
    lines = (tmp_path / "b" / "training_log.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == list(range(1, 7))


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(2)
    model = UnifiedVideoModel(SMALL)
    with torch.no_grad():
        model.refine[2].weight.normal_()  # make the output depend on every layer
    save_checkpoint(model, tmp_path / "ckpt", {"note": "test"})
    loaded = from_pretrained(tmp_path / "ckpt" / "model.safetensors")
    assert loaded.config == SMALL
    window = _window(3)
    with torch.no_grad():
        assert torch.equal(model.eval()(window), loaded(window))


def test_from_pretrained_rejects_a_config_that_does_not_match_the_weights(tmp_path):
    save_checkpoint(UnifiedVideoModel(SMALL), tmp_path / "ckpt")
    config_file = tmp_path / "ckpt" / "config.json"
    document = json.loads(config_file.read_text())
    document["config"]["dim"] = 64
    config_file.write_text(json.dumps(document))
    with pytest.raises(CheckpointError, match="does not match the weights"):
        from_pretrained(tmp_path / "ckpt")
    # weights written without the config in their metadata: caught by their shapes
    from safetensors.torch import load_file, save_file

    weights = tmp_path / "ckpt" / "model.safetensors"
    save_file(load_file(str(weights)), str(weights))
    with pytest.raises(CheckpointError, match="do not fit"):
        from_pretrained(tmp_path / "ckpt")
    with pytest.raises(InputError, match="missing"):
        from_pretrained(tmp_path / "nothing")


def test_correction_scale_scales_the_correction_and_is_not_architecture(tmp_path):
    torch.manual_seed(4)
    model = UnifiedVideoModel(SMALL).eval()
    with torch.no_grad():
        model.refine[2].weight.normal_()
    window = _window(5)
    with torch.no_grad():
        full = model(window)
        model.config = dataclasses.replace(SMALL, correction_scale=0.25)
        quarter = model(window)
    assert not torch.allclose(full, window.render_rgb)
    assert torch.allclose(quarter, window.render_rgb + 0.25 * (full - window.render_rgb), atol=1e-6)
    save_checkpoint(model, tmp_path / "scaled")
    assert from_pretrained(tmp_path / "scaled").config.correction_scale == 0.25
    assert model.config.architecture() == SMALL
    # a run resumed or started from a scaled checkpoint trains with the asked config's scale
    train_model(
        SMALL,
        lambda rng: (window, torch.rand_like(full)),
        TrainOptions(steps=1, warmup=1, device="cpu"),
        tmp_path / "run",
        initial=tmp_path / "scaled",
    )
    assert from_pretrained(tmp_path / "run").config == SMALL
    with pytest.raises(InputError, match="correction_scale"):
        dataclasses.replace(SMALL, correction_scale=1.5)


def test_keep_exposure_leaves_each_frames_mean_colour_to_the_render():
    torch.manual_seed(6)
    model = UnifiedVideoModel(SMALL).eval()
    with torch.no_grad():
        model.refine[2].weight.normal_()
        model.refine[2].bias.fill_(0.3)  # a global brightening: what keep_exposure must not let through
    window = _window(7)
    mean = lambda frames: frames.mean(dim=(-2, -1))  # noqa: E731  [B, T, 3]
    with torch.no_grad():
        free = model(window)
        model.config = dataclasses.replace(SMALL, keep_exposure=True)
        kept = model(window)
    assert (mean(free) - mean(window.render_rgb)).abs().min() > 0.05
    assert torch.allclose(mean(kept), mean(window.render_rgb), atol=1e-5)
    change = kept - window.render_rgb
    assert change.abs().mean() > 0.01  # the correction's structure is still there
    assert torch.allclose(change, free - window.render_rgb - mean(free - window.render_rgb)[..., None, None], atol=1e-5)
    assert model.config.architecture() == SMALL


def test_config_checks_and_unknown_settings():
    with pytest.raises(InputError, match="multiple of heads"):
        ModelConfig(dim=30, heads=4)
    with pytest.raises(InputError, match="overlap"):
        ModelConfig(window=2, overlap=2)
    with pytest.raises(InputError, match="unknown settings"):
        ModelConfig.from_dict({**SMALL.to_dict(), "wings": 2})


@pytest.mark.parametrize("count,window,overlap", [(1, 4, 1), (4, 4, 1), (5, 4, 1), (12, 4, 1), (13, 6, 2)])
def test_windows_cover_every_frame_and_overlap(count, window, overlap):
    windows = plan_windows(count, window, overlap)
    covered = sorted({i for w in windows for i in w})
    assert covered == list(range(count))
    assert all(len(w) == min(window, count) for w in windows)
    for a, b in zip(windows, windows[1:]):
        assert len(set(a) & set(b)) >= overlap
    weights = blend_weights(window)
    assert weights[0] < weights[window // 2]


def test_working_size_keeps_small_frames_and_aspect():
    assert working_size(320, 180, 320 * 180) == (320, 180)
    assert working_size(640, 360, 320 * 180) == (320, 180)
    w, h = working_size(1920, 1080, 320 * 180)
    assert abs(w / h - 16 / 9) < 0.02


def test_episode_pool_windows_match_their_scene():
    from reshoot.model_data import EpisodePool, EpisodeScene

    f, c, v, h, w = 5, 2, 3, 18, 32
    g = torch.Generator().manual_seed(0)
    scene = EpisodeScene(
        frames=torch.arange(10, 10 + f),
        sources=_cameras(v, w, h, 1),
        targets=_cameras(c, w, h, 2),
        source_rgb=torch.randint(0, 256, (f, v, h, w, 3), dtype=torch.uint8, generator=g),
        render_rgb=torch.rand(c, f, h, w, 3, generator=g).half(),
        render_depth=torch.rand(c, f, h, w, generator=g).half(),
        render_alpha=torch.rand(c, f, h, w, generator=g).half(),
        entity_ids=torch.randint(-1, 3, (c, f, h, w), generator=g),
        truth=torch.randint(0, 256, (c, f, h, w, 3), dtype=torch.uint8, generator=g),
    )
    pool = EpisodePool([scene], window=3, source_scale=0.5)
    window, truth = pool.window_of(scene, 1, 2)
    assert truth.shape == (1, 3, 3, h, w)
    assert torch.equal(truth[0, 0], scene.truth[1, 2].permute(2, 0, 1).float() / 255)
    assert torch.equal(window.render_rgb[0, 2], scene.render_rgb[1, 4].float().permute(2, 0, 1))
    assert window.target_time[0].tolist() == [-1.0, 0.0, 1.0]
    assert window.source_time[0].tolist() == [0.0] * v  # sources at the window's middle frame
    draws = [pool(np.random.default_rng([0, k]))[1] for k in range(2)]
    again = [pool(np.random.default_rng([0, k]))[1] for k in range(2)]
    assert all(torch.equal(a, b) for a, b in zip(draws, again))


def test_the_shipped_tiny_checkpoint_loads_and_records_how_it_was_trained():
    from reshoot.model.checkpoint import read_checkpoint_config
    from reshoot.stage_options import DEFAULT_CHECKPOINT

    model = from_pretrained(DEFAULT_CHECKPOINT)
    assert model.config == CONFIGS["tiny"]
    _, training = read_checkpoint_config(DEFAULT_CHECKPOINT)
    assert training["steps"] == training["options"]["steps"]  # trained to the end of its schedule
    assert training["data"]["kind"] == "synthetic" and training["command"].startswith("reshoot train")
    assert (DEFAULT_CHECKPOINT / "model.safetensors").stat().st_size <= 25_000_000
    with torch.no_grad():  # trained weights: the correction is not the untrained zero
        assert model.refine[2].weight.abs().sum() > 0
