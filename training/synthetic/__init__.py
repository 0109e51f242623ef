"""Synthetic presenters: identities drawn from a seed, rendered from DWPose-134 keypoints with region masks.

Entry points: :func:`training.synthetic.identity.sample_identity` and
:class:`training.synthetic.presenter.SyntheticPresenter`.
"""
