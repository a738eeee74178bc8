"""training: student initialisation from LiteMedSAM, a short distillation on real demo images, bit-exact resume."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from checkpoints.manifest import checkpoint_for, sha256_of
from inference.build import build_model
from training.__main__ import config_from_args, parse_args
from training.cache import build_cache, open_student_embeddings
from training.data import Augment, SliceDataset, augment, crop_boxes, discover_slices, label_boxes
from training.distill import DistillConfig, run_distillation, select_items, stage_names
from training.init import default_block_map, initialise_student, parse_block_map
from training.loop import TrainConfig, train, training_device
from training.stages import LocalStageTask


@pytest.fixture(scope="module")
def teacher_state() -> dict[str, torch.Tensor]:
    path = checkpoint_for("litemedsam").path
    if not path.is_file():
        pytest.skip("LiteMedSAM weights missing: python -m checkpoints fetch")
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state.get("model", state)


@pytest.fixture(scope="module")
def teacher(teacher_state):
    return build_model("litemedsam", checkpoint_for("litemedsam").path)


def test_block_maps():
    assert default_block_map("swiftmedsam-v2") == {0: (0,), 1: (0, 1), 2: (0, 5), 3: (0, 1)}
    assert default_block_map("swiftmedsam-v1")[2] == (0, 2, 3, 5)
    assert parse_block_map("0:1 2:4,5") == {0: (1,), 2: (4, 5)}


def test_init_copies_maps_and_slices(teacher_state):
    student, report = initialise_student(teacher_state, "swiftmedsam-v2", {2: (4, 5)})
    state = student.state_dict()
    assert report.random == []
    assert sorted(report.sliced) == [
        "mask_decoder.transformer.layers.0.mlp.lin1.bias",
        "mask_decoder.transformer.layers.0.mlp.lin1.weight",
        "mask_decoder.transformer.layers.0.mlp.lin2.weight",
    ]
    same = ["image_encoder.patch_embed.seq.0.c.weight", "image_encoder.neck.2.weight",
            "prompt_encoder.point_embeddings.2.weight", "mask_decoder.transformer.layers.0.self_attn.q_proj.weight"]
    for key in same:
        assert torch.equal(state[key], teacher_state[key]), key
    renamed = {
        "image_encoder.layers.2.blocks.0.attn.qkv.weight": "image_encoder.layers.2.blocks.4.attn.qkv.weight",
        "image_encoder.layers.2.blocks.1.mlp.fc2.bias": "image_encoder.layers.2.blocks.5.mlp.fc2.bias",
        "mask_decoder.iou_prediction_head.layers.1.weight": "mask_decoder.iou_prediction_head.layers.2.weight",
    }
    for key, source in renamed.items():
        assert torch.equal(state[key], teacher_state[source]), key
        assert report.copied[key] == source
    # The kept hidden units are those with the largest |lin1 row| x |lin2 column|, in order.
    prefix = "mask_decoder.transformer.layers.0.mlp."
    w1, w2 = teacher_state[prefix + "lin1.weight"], teacher_state[prefix + "lin2.weight"]
    keep = torch.topk(w1.norm(dim=1) * w2.norm(dim=0), 256).indices.sort().values
    assert torch.equal(state[prefix + "lin1.weight"], w1[keep])
    assert torch.equal(state[prefix + "lin1.bias"], teacher_state[prefix + "lin1.bias"][keep])
    assert torch.equal(state[prefix + "lin2.weight"], w2[:, keep])


def test_cli_defaults_are_distill_config():
    assert config_from_args(parse_args(["--data", "in", "--run-dir", "run"])) == DistillConfig()


def test_stage_order():
    assert stage_names("swiftmedsam-v2") == ["cache", "stage0", "stage2", "encoder", "student-cache", "decoder",
                                             "export"]
    assert stage_names("swiftmedsam-v1", "teacher") == ["cache", "stage2", "encoder", "decoder", "export"]


@pytest.fixture(scope="module")
def demo_cache(demo_data: Path, teacher, tmp_path_factory):
    """Teacher activations of two real demo samples (the 2D nuclei image and the last MR slice)."""
    refs = discover_slices(demo_data / "inputs")
    items = select_items(len(refs), 2)
    return build_cache(teacher, SliceDataset(refs), items, [0, 2], tmp_path_factory.mktemp("cache"), progress=False)


def test_crop_boxes_clip_and_drop():
    boxes = np.array([[10, 10, 20, 20], [0, 0, 5, 5], [45, 30, 80, 90]])
    assert crop_boxes(boxes, top=8, left=8, height=40, width=40).tolist() == [[2, 2, 12, 12], [37, 22, 39, 39]]


def test_crops_and_colour_of_real_images(demo_data):
    """A crop keeps every object box around what is left of its object; colour jitter tints only RGB images."""
    case = np.load(demo_data / "inputs" / "2DBox_Microscope_0001.npz")
    labels = np.load(demo_data / "gts" / "2DBox_Microscope_0001.npz")["gts"]
    boxes, ids = label_boxes(labels)
    plain = Augment(crop=1.0, flip=0.0, colour=0.0, gamma=(1.0, 1.0), noise_std=0.0)
    for seed in range(4):
        image, cropped, kept = augment(case["imgs"], labels, boxes, plain, np.random.default_rng(seed))
        assert image.shape[:2] == cropped.shape and image.shape[0] < labels.shape[0]
        visible, visible_ids = label_boxes(cropped)
        assert len(kept) == len(visible)  # boxes of objects outside the crop are dropped
        for (x0, y0, x1, y1), (a0, b0, a1, b1) in zip(kept, visible):
            assert x0 <= a0 and y0 <= b0 and a1 <= x1 and b1 <= y1
    grey = np.repeat(case["imgs"].mean(axis=2).astype(np.uint8)[..., None], 3, axis=2)
    colour = Augment(crop=0.0, flip=0.0, colour=1.0, noise_std=0.0)
    tinted = augment(grey, None, np.zeros((0, 4), int), colour, np.random.default_rng(1))[0]
    assert not np.array_equal(tinted[..., 0], tinted[..., 1])
    mr = np.load(demo_data / "inputs" / "3DBox_MR_0003.npz")["imgs"][10]
    assert augment(mr, None, np.zeros((0, 4), int), colour, np.random.default_rng(1))[0].shape == mr.shape


def test_2d_images_get_their_own_number_of_views(demo_data):
    refs = discover_slices(demo_data / "inputs")
    images = sum(ref.index is None for ref in refs)
    dataset = SliceDataset(refs, views=2, views_2d=5)
    assert images == 1 and len(dataset) == 2 * (len(refs) - images) + 5 * images
    image = next(i for i, ref in enumerate(refs) if ref.index is None)
    assert sorted(view for view, index in dataset.items if index == image) == [0, 1, 2, 3, 4]
    first, second = (dataset[dataset.items.index((view, image))]["image"] for view in (1, 2))
    assert not torch.equal(first, second)


def _losses(folder: Path) -> list[str]:
    with (folder / "metrics.csv").open(newline="") as handle:
        return [row["loss"] for row in csv.DictReader(handle)]


def test_cache_holds_boxes_from_labels(demo_cache):
    counts = demo_cache.get("n_boxes", [0, 1])
    assert counts[0] == 32 and counts[1] >= 1  # 125 nuclei capped at 32; a brain slice
    assert demo_cache.arrays["embedding"].shape == (2, 256, 64, 64)


def test_local_stage_lowers_loss_and_resumes_bit_exact(demo_cache, teacher_state, tmp_path):
    def task():
        return LocalStageTask(initialise_student(teacher_state, "swiftmedsam-v2")[0], demo_cache, 2)

    # Fitting one sample (the 2D nuclei image) must lower its loss within a few steps.
    cfg = TrainConfig(steps=4, batch_size=1, lr=1e-5, checkpoint_every=2, progress=False)
    straight = task()
    with torch.no_grad():
        before = straight(straight.batch([0], torch.Generator()))["loss"].item()
    train(straight, 1, cfg, tmp_path / "straight")
    with torch.no_grad():
        after = straight(straight.batch([0], torch.Generator()))["loss"].item()
    assert after < before

    assert train(task(), 1, cfg, tmp_path / "resumed", stop_after=2) == {"stopped_at": 2}
    train(task(), 1, cfg, tmp_path / "resumed", resume=True)
    assert _losses(tmp_path / "resumed") == _losses(tmp_path / "straight")
    final = torch.load(tmp_path / "resumed" / "student.pt", weights_only=True)
    for key, value in straight.student.state_dict().items():
        assert torch.equal(final[key], value), key


def test_training_device_follows_what_torch_sees() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert training_device("auto").type == expected and training_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="--device cuda, but torch sees no GPU"):
            training_device("cuda")
    with pytest.raises(ValueError, match="auto, cpu or cuda"):
        training_device("gpu")


def test_device_script_brings_back_weights_summary_and_metrics(demo_data, tmp_path):
    """scripts/distill_on_device.sh, run here on the CPU: a whole short run, with its results in OUT."""
    out = tmp_path / "out"
    env = {"PATH": "/usr/bin:/bin", "OUT": str(out), "DEVICE": "cpu", "PYTHON": sys.executable, "TMPDIR": str(tmp_path)}
    steps = ["--max-items", "2", "--boxes-per-image", "2"]
    for stage in ("local", "encoder", "decoder"):
        steps += [f"--{stage}-steps", "1", f"--{stage}-batch", "1"]
    subprocess.run(["sh", "scripts/distill_on_device.sh", str(demo_data / "inputs"), *steps],
                   cwd=Path(__file__).resolve().parents[1], env=env, check=True, capture_output=True)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["decoder.metrics.csv", "encoder.metrics.csv", "stage0.metrics.csv", "stage2.metrics.csv",
                     "summary.json", "swiftmedsam_v2.pth"]
    with (out / "decoder.metrics.csv").open(newline="") as handle:
        assert [row["step"] for row in csv.DictReader(handle)] == ["1"]
    weights = torch.load(out / "swiftmedsam_v2.pth", weights_only=True)
    assert "mask_decoder.transformer.layers.0.mlp.lin1.weight" in weights


def test_init_starts_from_an_earlier_student(demo_data, demo_cache, tmp_path):
    """With --init and no stage trained, the exported student is the earlier one, tensor for tensor."""
    earlier = checkpoint_for("swiftmedsam-v2").path
    run = tmp_path / "run"
    run.mkdir()
    (run / "cache").symlink_to(demo_cache.folder)
    cfg = DistillConfig(max_items=2, export_items=1, init=str(earlier))
    summary = run_distillation([demo_data / "inputs"], run, checkpoint_for("litemedsam").path, cfg,
                               only=["cache", "export"], progress=False)
    exported = torch.load(summary["export"]["path"], weights_only=True)
    published = torch.load(earlier, weights_only=True)
    assert exported.keys() == published.keys()
    assert all(torch.equal(exported[k].float(), published[k].float()) for k in published)


def test_distilled_checkpoint_runs_in_the_inference_cli(demo_data, demo_cache, tmp_path):
    run = tmp_path / "run"
    # The module's cache holds the same two samples, so the pipeline finds it complete.
    run.mkdir()
    (run / "cache").symlink_to(demo_cache.folder)
    cfg = DistillConfig(
        max_items=2, local=TrainConfig(steps=1, batch_size=1, progress=False),
        decoder=TrainConfig(steps=2, batch_size=1, progress=False), boxes_per_image=2, export_items=1,
    )
    summary = run_distillation([demo_data / "inputs"], run, checkpoint_for("litemedsam").path, cfg,
                               only=["cache", "stage2", "student-cache", "decoder", "export"], progress=False)
    weights = Path(summary["export"]["path"])
    assert weights.is_file() and summary["stages"]["decoder"]["steps"] == 2

    # The decoder learnt from the embeddings of the encoder it will run behind (stage 2's weights here).
    encoder_weights = run / "stage2" / "student.pt"
    student = build_model("swiftmedsam-v2")
    student.load_state_dict(torch.load(encoder_weights, weights_only=True))
    with torch.no_grad():
        expected = student.image_encoder(demo_cache.get("image", [0, 1])).numpy()
    cached = open_student_embeddings(run / "student-cache", sha256_of(encoder_weights))
    assert np.abs(cached - expected).max() <= 1e-3 * np.abs(expected).max()
    with pytest.raises(RuntimeError, match="other encoder weights"):
        open_student_embeddings(run / "student-cache", sha256_of(run / "stage2" / "checkpoint.pt"))

    case = np.load(demo_data / "inputs" / "2DBox_Microscope_0001.npz")
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    boxes = case["boxes"][:3]
    np.savez_compressed(inputs / "2DBox_Microscope_0001.npz", imgs=case["imgs"], boxes=boxes)
    subprocess.run([sys.executable, "-m", "inference", "-i", str(inputs), "-o", str(outputs), "--model",
                    "swiftmedsam-v2", "--backend", "torch", "--checkpoint", str(weights), "--threads", "2",
                    "--no-progress"], check=True)
    segs = np.load(outputs / "2DBox_Microscope_0001.npz")["segs"]
    assert segs.shape == case["imgs"].shape[:2] and segs.max() <= 3

