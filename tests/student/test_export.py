"""Export: every ONNX graph agrees with the torch model on the CPU EP, the optimiser's fusions are there,
and the ONNX Runtime streaming engine renders the same frames as the torch reference stream."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from inference.packs import load_pack

pytest.importorskip("torch", reason="the export checks need torch (the train extra)")


def op_counts(path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in onnx.load(str(path), load_external_data=False).graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


def test_graphs_and_streams_agree_with_torch_on_the_cpu(tiny_pack):
    from training.export_student import verify_pack

    pack, student = tiny_pack
    assert verify_pack(student, pack, "cpu", chunks=3) == []


def test_the_student_graphs_carry_the_fused_ops(tiny_pack):
    pack, student = tiny_pack
    depth = student.config.depth
    sparse, dense = op_counts(pack / "student.onnx"), op_counts(pack / "student_dense.onnx")
    assert sparse["BlockSparseAttention"] == depth and "MultiHeadAttention" not in sparse
    assert dense["MultiHeadAttention"] == depth and "BlockSparseAttention" not in dense
    for counts in (sparse, dense):
        assert counts["FastGelu"] == depth  # GELU(tanh) with fc1's bias folded in
        assert counts["SkipLayerNormalization"] >= depth  # residual + LayerNorm
        assert "Softmax" not in counts  # attention never falls back to plain MatMul/Softmax


def test_the_fallback_graph_renders_what_the_custom_op_renders(tiny_pack):
    from inference.render.student.engine import StudentEngine
    from tests.student.poses import presenter_clip

    pack = load_pack(tiny_pack[0])
    portrait = np.full((256, 256, 3), 90, np.uint8)
    clip = presenter_clip(6)
    frames = {}
    for attention in ("sparse", "fallback"):
        engine = StudentEngine(pack, provider="cpu", attention=attention, seed=1)
        engine.set_reference(portrait)
        frames[attention] = np.concatenate([engine.render_chunk(clip[i:i + 2])[0] for i in range(0, 6, 2)])
    assert np.abs(frames["sparse"].astype(int) - frames["fallback"].astype(int)).max() <= 1
