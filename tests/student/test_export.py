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
        assert counts["SplitHeadsNorm"] == depth and "SimplifiedLayerNormalization" not in counts  # q/k split + norm
        assert counts["FastGelu"] == depth  # GELU(tanh) with fc1's bias folded in
        assert counts["SkipLayerNormalization"] >= depth  # residual + LayerNorm
        assert "Softmax" not in counts  # attention never falls back to plain MatMul/Softmax


def test_float16_fallback_graphs_run_the_qk_rms_norms_in_float16(tiny_pack, tmp_path):
    """The graph for machines without the op library has the q/k RMSNorms as standard ops, which ONNX Runtime fuses
    into SimplifiedLayerNormalization between two casts to float32; the export drops the casts (ONNX Runtime's
    float16 kernel accumulates in float32), and the graph still agrees with torch."""
    from training.export_student import TOLERANCE, check_student_graph, export_graph

    _, student = tiny_pack
    path = tmp_path / "student_fallback_float16.onnx"
    export_graph(student, "student_fallback", path, "float16")
    model = onnx.load(str(path))
    assert not any(node.domain == "ai.podium" for node in model.graph.node)
    producers = {output: node for node in model.graph.node for output in node.output}
    norms = [n for n in model.graph.node if n.op_type == "SimplifiedLayerNormalization"]
    assert len(norms) == 2 * student.config.depth  # q and k of every block
    for norm in norms:
        assert all(producers[name].op_type != "Cast" for name in norm.input[:2] if name in producers), norm.name
    agreement = check_student_graph(student, path, "student_fallback", "float16", "cpu")
    assert agreement.relative_error <= TOLERANCE["float16"], agreement


def test_exported_graphs_carry_no_paths_of_the_machine_they_were_made_on(tiny_pack):
    from pathlib import Path

    repo = str(Path(__file__).resolve().parents[2])
    for path in sorted(tiny_pack[0].glob("*.onnx")):
        model = onnx.load(str(path), load_external_data=False)
        assert not any(node.metadata_props for node in model.graph.node), path.name
        assert repo.encode() not in path.read_bytes(), path.name


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
