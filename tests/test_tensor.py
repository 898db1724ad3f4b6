"""Tensor: autograd engine mechanics, hand-computed cases, and gradient checks of every primitive."""

import numpy as np
import pytest
from helpers import away_from_zero, distinct, gradcheck, randn

from convscope import Tensor, no_grad, tensor
from convscope.tensor import same_layout, unbroadcast

# ----- gradient checks of the primitives ------------------------------------------------------
BINARY_SHAPES = {
    "same_shape": ((3, 4), (3, 4)),
    "row_plus_column": ((3, 1), (1, 4)),
    "batch_by_vector": ((2, 3, 4), (4,)),
    "vector_by_batch": ((4,), (2, 3, 4)),
    "both_stretched": ((1, 3, 1), (2, 1, 4)),
    "scalar_shaped": ((2, 3), ()),
}


@pytest.mark.parametrize("shapes", BINARY_SHAPES.values(), ids=BINARY_SHAPES.keys())
@pytest.mark.parametrize("op", ["add", "sub", "mul", "div"])
def test_binary_op_gradients_with_broadcasting(op, shapes):
    fns = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b,
           "mul": lambda a, b: a * b, "div": lambda a, b: a / b}
    a, b = randn(*shapes[0], seed=1), away_from_zero(shapes[1], seed=2)
    gradcheck(fns[op], a, b)


@pytest.mark.parametrize("op", ["radd", "rsub", "rmul", "rtruediv", "neg", "sub_number", "div_number"])
def test_number_and_reflected_op_gradients(op):
    fns = {"radd": lambda a: 2.5 + a, "rsub": lambda a: 2.5 - a, "rmul": lambda a: 2.5 * a,
           "rtruediv": lambda a: 2.5 / a, "neg": lambda a: -a, "sub_number": lambda a: a - 1.5,
           "div_number": lambda a: a / 4.0}
    gradcheck(fns[op], away_from_zero((3, 4)))


def test_ndarray_on_the_left_uses_tensor_reflected_ops():
    x = Tensor(np.ones(3), requires_grad=True)
    out = np.array([1.0, 2.0, 3.0]) * x
    assert isinstance(out, Tensor)
    out.sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0, 2.0, 3.0])


def test_pow_rejects_tensor_exponent():
    with pytest.raises(TypeError, match="Python number"):
        Tensor([2.0]) ** Tensor([2.0])


@pytest.mark.parametrize("exponent", [2, 3, -1, 0.5, 1.5])
def test_pow_gradient(exponent):
    gradcheck(lambda a: a ** exponent, np.abs(away_from_zero((2, 3))))


@pytest.mark.parametrize("shapes", [((3, 4), (4, 5)), ((2, 3, 4), (4, 5)), ((4, 5), (2, 5, 3)),
                                    ((3, 4, 5), (2, 1, 5, 6)), ((2, 1, 3, 4), (5, 4, 2))],
                         ids=["2d", "batch_at_2d", "2d_at_batch", "broadcast_batch_dims", "both_stretched"])
def test_matmul_gradient_with_broadcast_batch_dims(shapes):
    gradcheck(lambda a, b: a @ b, randn(*shapes[0], seed=1), randn(*shapes[1], seed=2))


def test_matmul_rejects_vectors():
    with pytest.raises(ValueError, match="at least 2 dims"):
        Tensor(np.ones(3)) @ Tensor(np.ones((3, 2)))


@pytest.mark.parametrize("fn, data", [
    (lambda a: a.exp(), randn(2, 3)),
    (lambda a: a.log(), np.abs(away_from_zero((2, 3)))),
    (lambda a: a.abs(), away_from_zero((2, 3))),
    (lambda a: a.sqrt(), np.abs(away_from_zero((2, 3)))),
], ids=["exp", "log", "abs", "sqrt"])
def test_elementwise_function_gradients(fn, data):
    gradcheck(fn, data)


REDUCTION_AXES = [None, 0, 1, -1, (0, 2), (-1, 0)]


@pytest.mark.parametrize("keepdims", [False, True], ids=["drop", "keepdims"])
@pytest.mark.parametrize("axis", REDUCTION_AXES, ids=str)
@pytest.mark.parametrize("name", ["sum", "mean"])
def test_sum_and_mean_gradients(name, axis, keepdims):
    gradcheck(lambda a: getattr(a, name)(axis=axis, keepdims=keepdims), randn(2, 3, 4))


@pytest.mark.parametrize("keepdims", [False, True], ids=["drop", "keepdims"])
@pytest.mark.parametrize("axis", [None, 0, 1, -1], ids=str)
def test_max_gradient(axis, keepdims):
    gradcheck(lambda a: a.max(axis=axis, keepdims=keepdims), distinct((2, 3, 4)))


SHAPE_OPS = {
    "reshape_tuple": lambda a: a.reshape((4, 6)),
    "reshape_args_minus1": lambda a: a.reshape(3, -1),
    "transpose_default": lambda a: a.transpose(),
    "transpose_perm": lambda a: a.transpose(1, 2, 0),
    "transpose_tuple": lambda a: a.transpose((2, 0, 1)),
    "T": lambda a: a.T,
    "astype_same": lambda a: a.astype(np.float64),
}


@pytest.mark.parametrize("fn", SHAPE_OPS.values(), ids=SHAPE_OPS.keys())
def test_shape_op_gradients(fn):
    gradcheck(fn, randn(2, 3, 4))


GETITEM_INDICES = {
    "int": 1,
    "slice": slice(0, 2),
    "step_slice": (slice(None), slice(None, None, 2)),
    "negative_step": (slice(None, None, -1), 1),
    "int_and_slice": (0, slice(1, 3), slice(None)),
    "fancy_with_repeats": [0, 1, 1, 0],
    "fancy_pair": ([0, 1, 1], [2, 0, 2]),
    "fancy_and_slice": (slice(None), [2, 0, 2]),
    "boolean_mask": np.array([True, False]),
    "ellipsis_newaxis": (Ellipsis, None, 1),
}


@pytest.mark.parametrize("index", GETITEM_INDICES.values(), ids=GETITEM_INDICES.keys())
def test_getitem_gradient(index):
    gradcheck(lambda a: a[index], randn(2, 3, 4))


def test_getitem_with_an_integer_valued_tensor_index():
    # Tensors hold floats, so an index Tensor carries float positions; indexing must still work.
    x = Tensor(np.arange(5.0), requires_grad=True)
    out = x[Tensor([0, 2, 2])]
    np.testing.assert_array_equal(out.data, [0.0, 2.0, 2.0])
    out.sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0, 0.0, 2.0, 0.0, 0.0])


def test_composite_expression_gradient():
    def f(a, b):
        return ((a @ b).exp() * a.sum(axis=1, keepdims=True) - (b ** 2).mean()).abs().log()

    gradcheck(f, randn(3, 2, seed=3) * 0.3, randn(2, 4, seed=4) * 0.3)


# ----- hand-computed cases --------------------------------------------------------------------
def test_tiny_expression_by_hand():
    x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    w = Tensor([0.5, -1.0, 2.0], requires_grad=True)
    loss = (x * w).sum() + (x ** 2).sum()  # 0.5 - 2 + 6 + 14
    assert loss.item() == pytest.approx(18.5)
    loss.backward()
    np.testing.assert_allclose(x.grad, [2.5, 3.0, 8.0])  # w + 2x
    np.testing.assert_allclose(w.grad, [1.0, 2.0, 3.0])


def test_max_gradient_goes_to_first_maximum():
    x = Tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 0.0]], requires_grad=True)
    x.max(axis=1).sum().backward()
    np.testing.assert_array_equal(x.grad, [[0, 1, 0], [1, 0, 0]])
    x.grad = None
    Tensor.max(x).backward()
    np.testing.assert_array_equal(x.grad, [[0, 1, 0], [0, 0, 0]])


def test_mean_of_all_elements_by_hand():
    x = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    out = x.mean()
    assert out.item() == 2.5
    out.backward()
    np.testing.assert_allclose(x.grad, np.full((2, 3), 1 / 6))


# ----- engine mechanics -----------------------------------------------------------------------
def test_reused_tensor_accumulates_gradient():
    x = Tensor([3.0], requires_grad=True)
    (x * x + x).sum().backward()  # d/dx (x^2 + x) = 2x + 1
    np.testing.assert_allclose(x.grad, [7.0])


def test_diamond_graph_visits_shared_node_once():
    x = Tensor([2.0], requires_grad=True)
    y = x * 3.0
    z = y * y + y  # dz/dx = (2y + 1) * 3 = 39
    z.sum().backward()
    np.testing.assert_allclose(x.grad, [39.0])


def test_same_layout_copies_a_gradient_into_the_layout_of_its_data():
    data = np.zeros((3, 4, 5, 2)).transpose(3, 0, 1, 2)  # (N, C, H, W) stored batch-last
    grad = np.arange(120.0).reshape(2, 3, 4, 5)  # stored NCHW
    out = same_layout(grad, data)
    np.testing.assert_array_equal(out, grad)
    assert out.strides == data.strides
    assert same_layout(out, data) is out  # already alike: no copy
    assert same_layout(grad, np.zeros((2, 3, 4, 5))) is grad


def test_gradient_arrives_in_the_layout_of_its_data():
    data = np.ones((3, 2, 4, 4)).transpose(1, 0, 2, 3)  # (N, C, H, W) with C outermost in memory
    x = Tensor(data, requires_grad=True)
    seen = []
    probe = Tensor.from_op(data, (x,), lambda g: seen.append(g) or (g,))  # records its gradient
    projection = np.arange(96.0).reshape(2, 48)
    (probe.reshape(2, -1) * Tensor(projection)).sum().backward()  # reshape's gradient is (2, 48)
    assert seen[0].strides[1] > seen[0].strides[0]  # stored like probe's data
    np.testing.assert_array_equal(seen[0].reshape(2, -1), projection)


def test_gradients_accumulate_across_backward_calls():
    x = Tensor([1.0, 2.0], requires_grad=True)
    (x * 2.0).sum().backward()
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad, [5.0, 5.0])


def test_backward_needs_scalar_or_explicit_gradient():
    x = Tensor(np.ones((2, 2)), requires_grad=True)
    with pytest.raises(RuntimeError, match="scalar"):
        (x * 2.0).backward()
    (x * 2.0).backward(np.full((2, 2), 0.5))
    np.testing.assert_allclose(x.grad, np.ones((2, 2)))


def test_backward_on_constant_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor([1.0]).sum().backward()


def test_no_grad_records_no_graph_and_restores_mode():
    x = Tensor([1.0], requires_grad=True)
    with no_grad():
        y = x * 2.0
    assert not y.requires_grad and y._parents == ()
    assert (x * 2.0).requires_grad


def test_constants_receive_no_gradient():
    x, c = Tensor([1.0, 2.0], requires_grad=True), Tensor([5.0, 6.0])
    (x * c).sum().backward()
    assert c.grad is None


def test_detach_cuts_the_graph():
    x = Tensor([1.0], requires_grad=True)
    d = (x * 2.0).detach()
    assert not d.requires_grad
    assert not (d * 3.0).requires_grad


def test_dtypes():
    assert Tensor([1, 2]).dtype == np.float32
    assert Tensor([True]).dtype == np.float32
    assert Tensor([1.5]).dtype == np.float32
    assert Tensor(np.ones(2, dtype=np.float32)).dtype == np.float32
    assert Tensor(np.arange(3)).dtype == np.float32
    assert Tensor(np.ones(2)).dtype == np.float64  # float ndarrays keep their dtype, as torch.tensor
    assert Tensor([1.0], dtype=np.float64).dtype == np.float64
    with pytest.raises(TypeError, match="float32 or float64"):
        Tensor([1], dtype=np.int64)
    assert tensor([1.0], requires_grad=True).requires_grad
    x32 = Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    out = (x32 * 0.1 + 2.0) / 3.0 - 1.0
    assert out.dtype == np.float32
    out.sum().backward()
    assert x32.grad.dtype == np.float32


def test_astype_gradient_returns_to_original_dtype():
    x = Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    y = x.astype(np.float64)
    assert y.dtype == np.float64
    (y * 2.0).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad, [2.0, 2.0, 2.0])


def test_properties_and_repr():
    x = Tensor(np.zeros((2, 3)), requires_grad=True)
    assert (x.shape, x.ndim, x.size, len(x)) == ((2, 3), 2, 6, 2)
    assert x.T.shape == (3, 2)
    assert x.numpy() is x.data
    assert "requires_grad=True" in repr(x)


@pytest.mark.parametrize("grad_shape, shape, expected", [
    ((2, 3), (2, 3), np.ones((2, 3))),
    ((2, 3), (3,), np.full(3, 2.0)),
    ((2, 3), (1, 3), np.full((1, 3), 2.0)),
    ((2, 3), (2, 1), np.full((2, 1), 3.0)),
    ((4, 2, 3), (2, 1), np.full((2, 1), 12.0)),
    ((2, 3), (), np.array(6.0)),
], ids=["same", "leading_axis", "stretched_row", "stretched_column", "both", "to_scalar"])
def test_unbroadcast_sums_stretched_axes(grad_shape, shape, expected):
    out = unbroadcast(np.ones(grad_shape), shape)
    assert out.shape == shape
    np.testing.assert_array_equal(out, expected)


def test_grad_mode_is_per_thread():
    """A web request tracing under no_grad must not switch the graph off for a training thread."""
    import threading

    from convscope.tensor import is_grad_enabled
    inside, other = threading.Event(), []

    def trace_like():
        with no_grad():
            inside.set()
            other.append(is_grad_enabled())
            done.wait(5)

    done = threading.Event()
    worker = threading.Thread(target=trace_like)
    worker.start()
    inside.wait(5)
    w = Tensor(np.ones(3), requires_grad=True)
    y = (w * 2).sum()  # built here while the other thread is inside no_grad
    done.set()
    worker.join()
    assert other == [False] and is_grad_enabled()
    y.backward()
    np.testing.assert_array_equal(w.grad, [2.0, 2.0, 2.0])
