"""Named vertex sets of mediapipe's 478-point face mesh (with refined lips and irises).

"Right" and "left" are the subject's own: the subject's right eye appears on the
image's left. Chains run from the subject's right to the subject's left (image
left to right for a frontal face), so the upper and lower chains of a feature
pair up index by index.
"""

from __future__ import annotations

import numpy as np

NUM_FACE_POINTS = 478

NOSE_TIP = 1
CHIN = 152
#: Cheek points at ear level; their distance is the face width used for framing.
CHEEK_RIGHT, CHEEK_LEFT = 234, 454
#: Eye corners: (outer, inner) per eye.
RIGHT_EYE_CORNERS = (33, 133)
LEFT_EYE_CORNERS = (263, 362)

# Lips: corner to corner, subject's right to left.
OUTER_UPPER_LIP = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
OUTER_LOWER_LIP = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
INNER_UPPER_LIP = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
INNER_LOWER_LIP = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)

# Eyelids: outer corner to inner corner for the right eye, inner to outer for the left one, so that both
# run image-left to image-right.
RIGHT_UPPER_LID = (33, 246, 161, 160, 159, 158, 157, 173, 133)
RIGHT_LOWER_LID = (33, 7, 163, 144, 145, 153, 154, 155, 133)
LEFT_UPPER_LID = (362, 398, 384, 385, 386, 387, 388, 466, 263)
LEFT_LOWER_LID = (362, 382, 381, 380, 374, 373, 390, 249, 263)

RIGHT_BROW = (70, 63, 105, 66, 107, 46, 53, 52, 65, 55)
LEFT_BROW = (300, 293, 334, 296, 336, 276, 283, 282, 295, 285)

RIGHT_IRIS = (468, 469, 470, 471, 472)
LEFT_IRIS = (473, 474, 475, 476, 477)

#: The face outline, clockwise from the top of the forehead.
FACE_OVAL = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)


def eye_centres(face_xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centres of the right and left eye (mean of their corners), from ``[478, >=2]`` points."""
    right = face_xy[list(RIGHT_EYE_CORNERS), :2].mean(axis=0)
    left = face_xy[list(LEFT_EYE_CORNERS), :2].mean(axis=0)
    return right, left
