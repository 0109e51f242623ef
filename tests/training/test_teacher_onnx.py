"""The teacher's ONNX sampler (the ablation's teacher rows) against torch's ``euler_sample``, with and without
classifier-free guidance over the pose, on a stream of two overlapping windows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inference.render.pose_map import draw_pose_map
from tests.student.poses import presenter_clip, with_an_arm_below_the_frame
from training.distillation.clip_attention import spec_for
from training.export_student import STREAM_TOLERANCE
from training.models.autoencoder import Autoencoder, rgb_from_uint8, rgb_to_uint8
from training.models.config import preset
from training.models.teacher import Teacher, euler_sample
from training.models.transformer import randomize_

CONFIG = preset("tiny").with_(chunk_frames=4)
FRAMES, STEPS, OVERLAP = 6, 3, 2

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from inference import ops
    from training.distillation.teacher_onnx import export_teacher

    if not ops.availability()[0]:
        pytest.skip(f"the teacher's graphs use the custom op library: {ops.availability()[1]}")
    teacher = randomize_(Teacher(CONFIG), seed=5).eval()
    autoencoder = randomize_(Autoencoder(CONFIG), seed=6).eval()
    graphs = export_teacher(teacher.transformer, autoencoder, spec_for(CONFIG, "dense"),
                            tmp_path_factory.mktemp("teacher-onnx"), window=CONFIG.chunk_frames, precision="float32")
    return teacher, autoencoder, graphs


@pytest.mark.parametrize("guidance", [1.0, 8.0])  # a large scale, so the pose-free call shows in the frames
def test_the_onnx_teacher_samples_what_torch_samples(exported, guidance):
    from training.distillation.teacher_onnx import OnnxTeacher

    teacher, autoencoder, graphs = exported
    keypoints = with_an_arm_below_the_frame(presenter_clip(FRAMES))  # maps drawn as the teacher was trained
    portrait = np.random.default_rng(3).integers(0, 256, (CONFIG.size, CONFIG.size, 3), dtype=np.uint8)
    sampler = OnnxTeacher(graphs, "cpu", steps=STEPS, overlap=OVERLAP, seed=7, guidance=guidance)
    sampler.set_reference(portrait)
    ours = sampler.render(keypoints)

    shape = (FRAMES, CONFIG.latent_channels, CONFIG.latent_size, CONFIG.latent_size)
    noise = torch.from_numpy(np.random.default_rng(7).standard_normal(shape, dtype=np.float32))[None]
    pose = torch.from_numpy(np.stack([draw_pose_map(k, (CONFIG.size, CONFIG.size), style=CONFIG.pose_style)
                                     for k in keypoints]))[None]
    with torch.no_grad():
        reference = autoencoder.encode(rgb_from_uint8(torch.from_numpy(portrait)[None]))
        latent = euler_sample(teacher, pose, reference, noise, STEPS, window=CONFIG.chunk_frames, overlap=OVERLAP,
                              guidance=guidance)
        truth = rgb_to_uint8(autoencoder.decode(latent[0])).numpy()
    difference = np.abs(ours.astype(int) - truth.astype(int))
    assert ours.shape == truth.shape and difference.max() <= STREAM_TOLERANCE["float32"], difference.max()
    if guidance != 1.0:  # and guidance changed the frames (the pose-free call was made and used)
        plain = OnnxTeacher(graphs, "cpu", steps=STEPS, overlap=OVERLAP, seed=7)
        plain.set_reference(portrait)
        assert np.abs(plain.render(keypoints).astype(int) - ours.astype(int)).max() > 10


def test_the_onnx_teacher_refuses_a_guidance_scale_that_is_not_positive(exported):
    from training.distillation.teacher_onnx import OnnxTeacher

    with pytest.raises(ValueError, match="guidance scale must be above 0"):
        OnnxTeacher(exported[2], "cpu", guidance=0.0)
