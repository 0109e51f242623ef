"""BlockSparseAttention under ONNX Runtime's CPU execution provider, against the float64 reference.

Every test draws fresh random inputs and masks (the seed is printed). Outputs are bound as buffers
full of NaN before the run, so an element the kernel forgets to write shows up.
Tolerance (float32 kernel vs float64 reference): |out - ref| <= 2e-5 + 1e-4 |ref| per element.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from op_cases import MASK_KINDS, AttentionCase, make_case, without_input_shapes

from inference import ops
from inference.ops import csr, graphs

RTOL, ATOL = 1e-4, 2e-5


def session(model, *, threads: int = 0) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    ops.register(options)
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


_sessions: dict[tuple, ort.InferenceSession] = {}


def op_session(block_size: int, *, scale: float | None = None, per_head: bool = False,
               shapes: bool = True) -> ort.InferenceSession:
    key = (block_size, scale, per_head, shapes)
    if key not in _sessions:
        model = graphs.block_sparse_attention_model(np.float32, block_size, scale=scale, per_head_mask=per_head)
        _sessions[key] = session(model if shapes else without_input_shapes(model))
    return _sessions[key]


def run(sess: ort.InferenceSession, inputs: dict[str, np.ndarray], out_shape: tuple[int, ...]) -> np.ndarray:
    """Runs with IO binding into an output buffer poisoned with NaN; returns that buffer."""
    out = np.full(out_shape, np.nan, dtype=np.float32)
    binding = sess.io_binding()
    for name, value in inputs.items():
        binding.bind_cpu_input(name, value)
    binding.bind_ortvalue_output("out", ort.OrtValue.ortvalue_from_numpy(out))  # wraps `out`, no copy
    sess.run_with_iobinding(binding)
    return out


def check(case: AttentionCase, sess: ort.InferenceSession) -> None:
    out = run(sess, case.inputs(), case.q.shape)
    assert np.isfinite(out).all(), "some output elements were not written"
    np.testing.assert_allclose(out, case.expected(), rtol=RTOL, atol=ATOL)
    empty = case.empty_query_rows()
    if empty.ndim == 2:  # one mask for all heads
        empty = np.broadcast_to(empty[:, None], out.shape[:3])
    assert (out[empty] == 0).all(), "query rows without a kept key block must be exactly zero"


@pytest.mark.usefixtures("op_library")
class TestCorrectness:
    @pytest.mark.parametrize("block_size", [64, 128])
    @pytest.mark.parametrize("kind", MASK_KINDS)
    def test_mask_kinds_with_partial_blocks(self, rng: np.random.Generator, block_size: int, kind: str) -> None:
        q_len = int(rng.integers(block_size + 1, 3 * block_size))  # never a multiple of the block size
        kv_len = int(rng.integers(block_size + 1, 4 * block_size))
        case = make_case(rng, batch=2, heads=2, q_len=q_len | 1, kv_len=kv_len | 1, head_dim=64,
                         block_size=block_size, kind=kind)
        check(case, op_session(block_size))

    @pytest.mark.parametrize("head_dim", [128, 40])
    def test_head_dims(self, rng: np.random.Generator, head_dim: int) -> None:
        case = make_case(rng, batch=1, heads=3, q_len=200, kv_len=333, head_dim=head_dim, block_size=64)
        check(case, op_session(64))

    def test_per_head_mask(self, rng: np.random.Generator) -> None:
        case = make_case(rng, batch=2, heads=3, q_len=150, kv_len=270, head_dim=64, block_size=64, per_head=True)
        check(case, op_session(64, per_head=True))

    def test_scale_attribute(self, rng: np.random.Generator) -> None:
        case = make_case(rng, batch=1, heads=2, q_len=130, kv_len=190, head_dim=64, block_size=64, scale=0.3)
        check(case, op_session(64, scale=0.3))

    def test_sequences_shorter_than_one_block(self, rng: np.random.Generator) -> None:
        case = make_case(rng, batch=3, heads=1, q_len=5, kv_len=1, head_dim=64, block_size=128, kind="full")
        check(case, op_session(128))

    def test_many_tasks_on_all_threads(self, rng: np.random.Generator) -> None:
        case = make_case(rng, batch=1, heads=4, q_len=1000, kv_len=1100, head_dim=64, block_size=64)
        check(case, op_session(64))

    def test_empty_sequences(self, rng: np.random.Generator) -> None:
        no_queries = make_case(rng, batch=2, heads=2, q_len=0, kv_len=70, head_dim=64, block_size=64)
        assert run(op_session(64), no_queries.inputs(), no_queries.q.shape).shape == (2, 2, 0, 64)
        no_keys = make_case(rng, batch=2, heads=2, q_len=70, kv_len=0, head_dim=64, block_size=64)
        assert (run(op_session(64), no_keys.inputs(), no_keys.q.shape) == 0).all()

    def test_time_scales_with_kept_blocks(self, rng: np.random.Generator) -> None:
        """Only kept blocks are visited: one block per row costs a small fraction of a full mask.
        One thread, so that the machine's core count does not blur the ratio (1/16 of the work)."""
        import time

        q = rng.standard_normal((1, 2, 1024, 64)).astype(np.float32)
        sess = session(graphs.block_sparse_attention_model(np.float32, 64), threads=1)
        times = {}
        for name, mask in (("full", np.ones((1, 16, 16), bool)), ("diagonal", np.eye(16, dtype=bool)[None])):
            row_ptr, col_idx = csr.block_mask_to_csr(mask)
            inputs = {"q": q, "k": q, "v": q, "row_ptr": row_ptr, "col_idx": col_idx}
            run(sess, inputs, q.shape)
            samples = []
            for _ in range(5):
                start = time.perf_counter()
                run(sess, inputs, q.shape)
                samples.append(time.perf_counter() - start)
            times[name] = min(samples)
        assert times["diagonal"] < 0.3 * times["full"], times


def expect_error(sess: ort.InferenceSession, inputs: dict[str, np.ndarray], message: str) -> None:
    with pytest.raises(Exception, match=message):
        sess.run(None, inputs)


@pytest.mark.usefixtures("op_library")
class TestMalformedMask:
    @pytest.fixture
    def case(self, rng: np.random.Generator) -> AttentionCase:
        return make_case(rng, batch=2, heads=2, q_len=256, kv_len=256, head_dim=64, block_size=64, kind="full")

    @pytest.mark.parametrize(("edit", "message"), [
        (lambda rp, ci: rp.__setitem__((1, 0), 2), r"row_ptr\[1, 0\] is 2, but a row-pointer array starts at 0"),
        (lambda rp, ci: rp.__setitem__((0, 2), 3), r"row_ptr\[0, 2\] = 3 is smaller than the row pointer before it"),
        (lambda rp, ci: rp.__setitem__((0, 4), 99), r"row_ptr\[0, 4\] = 99 is outside \[0, 16\]"),
        (lambda rp, ci: rp.__setitem__((1, 1), -5), r"row_ptr\[1, 1\] = -5 is outside"),
        (lambda rp, ci: ci.__setitem__((0, 5), 4), r"col_idx\[0, 5\] = 4 is not a key block: there are 4"),
        (lambda rp, ci: ci.__setitem__((1, 0), -1), r"col_idx\[1, 0\] = -1 is not a key block"),
        (lambda rp, ci: ci.__setitem__((0, 6), 0), r"col_idx\[0, 6\] = 0 is not greater than the key block before"),
    ])
    def test_rejected_with_the_entry_named(self, case: AttentionCase, edit, message: str) -> None:
        edit(case.row_ptr, case.col_idx)
        expect_error(op_session(64), case.inputs(), message)

    def test_per_head_mask_names_the_head(self, rng: np.random.Generator) -> None:
        case = make_case(rng, batch=1, heads=3, q_len=128, kv_len=128, head_dim=64, block_size=64, per_head=True,
                         kind="full")
        case.col_idx[0, 2, 1] = 7
        expect_error(op_session(64, per_head=True), case.inputs(), r"col_idx\[0, 2, 1\] = 7 is not a key block")

    def test_padding_past_the_last_row_is_ignored(self, rng: np.random.Generator) -> None:
        case = make_case(rng, batch=2, heads=1, q_len=128, kv_len=128, head_dim=64, block_size=64, kind="full")
        case.row_ptr[1] = [0, 1, 2]
        case.col_idx[1, 2:] = -7  # past row_ptr[1, -1]: padding, never read
        check(case, op_session(64))


@pytest.mark.usefixtures("op_library")
class TestShapesAndAttributes:
    @pytest.fixture
    def inputs(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return make_case(rng, batch=2, heads=2, q_len=100, kv_len=130, head_dim=64, block_size=64).inputs()

    @pytest.mark.parametrize(("name", "change", "message"), [
        ("q", lambda x: x[0], r"q must have rank 4 \[batch, heads, q_len, head_dim\], got shape \[2, 100, 64\]"),
        ("v", lambda x: x[:, :, :-1], r"k and v must have the same shape"),
        ("q", lambda x: np.concatenate([x, x], axis=1), r"k \[2, 2, 130, 64\] must match q \[2, 4, 100, 64\] in batch"),
        ("row_ptr", lambda x: x[:, :-1], r"row_ptr must have shape \[2, 3\] for q_len 100 and block_size 64"),
        ("row_ptr", lambda x: x[None], r"row_ptr must have shape \[2, 2, 3\]"),
        ("col_idx", lambda x: x[:1], r"col_idx must have shape \[batch, nnz\]"),
    ])
    def test_wrong_shape_rejected(self, inputs: dict[str, np.ndarray], name: str, change, message: str) -> None:
        inputs[name] = np.ascontiguousarray(change(inputs[name]))
        expect_error(op_session(64, shapes=False), inputs, message)

    @pytest.mark.parametrize(("attributes", "message"), [
        ({"block_size": 32}, r"attribute block_size is 32; it must be 64 or 128"),
        ({"block_size": 64, "scale": -1.0}, r"attribute scale is -1; it must be a positive finite number"),
    ])
    def test_bad_attribute_rejected_when_the_session_is_made(self, attributes: dict, message: str) -> None:
        model = graphs.block_sparse_attention_model(np.float32, 64)
        node = model.graph.node[0]
        del node.attribute[:]
        node.attribute.extend(onnx_attributes(attributes))
        with pytest.raises(Exception, match=message):
            session(model)

    def test_missing_block_size_rejected(self) -> None:
        model = graphs.block_sparse_attention_model(np.float32, 64)
        del model.graph.node[0].attribute[:]
        with pytest.raises(Exception, match="the node has no int attribute block_size"):
            session(model)


def onnx_attributes(values: dict) -> list:
    from onnx import helper

    return [helper.make_attribute(name, value) for name, value in values.items()]
