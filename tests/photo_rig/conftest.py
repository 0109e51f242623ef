"""Shared fixtures of the photo-rig tests: the bundled portrait, fitted once, and measuring helpers."""

from __future__ import annotations

import numpy as np
import pytest

from inference.motion.rig import Framing, RigControls, pose_keypoints
from inference.paths import default_portrait
from inference.render.photo_rig import topology as topo
from inference.render.photo_rig.renderer import PortraitRig, prepare_portrait
from inference.sources.portrait import load_portrait
from inference.types import KeypointFrame

SIZE = (512, 512)


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    return load_portrait(default_portrait())


@pytest.fixture(scope="session")
def astronaut_rig(astronaut: np.ndarray) -> PortraitRig:
    """The bundled portrait fitted for 512x512 (no cache: the session's data folder is private per test)."""
    return prepare_portrait(astronaut, SIZE, use_cache=False)


def keypoint_frame(index: int = 0, framing: str = "head-and-shoulders", **controls: object) -> KeypointFrame:
    """A keypoint frame posed by the motion rig's controls."""
    return KeypointFrame(pose_keypoints(RigControls(**controls), Framing.named(framing)), index=index, fps=25.0)


class FaceMeter:
    """Measures rendered frames with mediapipe's face mesh (what a viewer would see, not what was asked)."""

    def __init__(self) -> None:
        import mediapipe as mp

        self._mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True)

    def landmarks(self, rgb: np.ndarray) -> np.ndarray:
        result = self._mesh.process(rgb)
        assert result.multi_face_landmarks, "no face found in a rendered frame"
        h, w = rgb.shape[:2]
        return np.array([(p.x * w, p.y * h) for p in result.multi_face_landmarks[0].landmark])

    def mouth_gap(self, rgb: np.ndarray) -> float:
        """Inner-lip gap over the eye distance."""
        lm = self.landmarks(rgb)
        right, left = topo.eye_centres(lm)
        return float(np.linalg.norm(lm[14] - lm[13]) / np.linalg.norm(left - right))

    def eye_opening(self, rgb: np.ndarray) -> float:
        """Mean lid gap of both eyes over the eye distance."""
        lm = self.landmarks(rgb)
        right, left = topo.eye_centres(lm)
        gaps = [np.linalg.norm(lm[159] - lm[145]), np.linalg.norm(lm[386] - lm[374])]
        return float(np.mean(gaps) / np.linalg.norm(left - right))

    def close(self) -> None:
        self._mesh.close()


@pytest.fixture(scope="session")
def face_meter() -> FaceMeter:
    meter = FaceMeter()
    yield meter
    meter.close()


@pytest.fixture
def renderer(astronaut: np.ndarray, astronaut_rig: PortraitRig):
    """A photo-rig renderer on the bundled portrait; the fit is seeded into this test's cache (fast start)."""
    from inference.render.photo_rig import cache
    from inference.render.photo_rig.renderer import PhotoRigRenderer

    cache.save_fit(cache.portrait_key(astronaut), astronaut_rig.landmarks)
    r = PhotoRigRenderer(SIZE)
    r.set_reference(astronaut)
    assert r.rig is not None and r.rig.from_cache
    yield r
    r.close()
