"""The motion stage: audio (or a camera) to a DWPose-134 keypoint stream.

Entry point: :func:`inference.motion.factory.create_motion`. The speech-driven
stream lives in :mod:`~inference.motion.speech` and is built from small parts:
``audio_frontend`` (16 kHz, 10 ms features), ``prosody`` (voice activity,
accents, phrases), ``phonemes`` (pocketsphinx), ``visemes`` (coarticulated mouth
shapes), ``head``, ``idle``, ``gestures`` and ``hand_shapes``, all posing the
parametric ``rig``. ``energy`` is the loudness-only fallback, ``replay`` plays a
saved keypoint file, ``landmark_mapping`` turns MediaPipe landmarks into the
layout (for :mod:`inference.sources.webcam_pose`), and ``readout`` measures face
state back out of keypoints.
"""
