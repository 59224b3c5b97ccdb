"""fit (layers, compiled models and plain functions; history; progress display), and the
save_params/load_params round trip with its errors."""

import io

import numpy as np
import pytest

import graphc as gc
import graphc.nn as nn
import graphc.tensor as gt


def blobs(n=120, seed=0):
    """Three well separated Gaussian blobs in 4 dimensions: (float32 points, int32 labels)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n).astype("int32")
    centres = np.array([[3, 0, 0, 0], [0, 3, 0, 0], [0, 0, 3, 0]], "float32")
    return (centres[labels] + rng.normal(0, 0.5, (n, 4))).astype("float32"), labels


def small_model(seed=0):
    return nn.Sequential(nn.Dense(4, 8, "tanh", rng=seed, dtype="float32"),
                         nn.BatchNorm(8, dtype="float32"),
                         nn.Dense(8, 3, rng=seed + 1, dtype="float32"))


def test_fit_a_layer_learns_and_reports_every_epoch():
    x, y = blobs()
    out = io.StringIO()
    model = small_model()
    history = nn.fit(model, (x[:90], y[:90]), epochs=4, batch_size=16,
                     validation_data=(x[90:], y[90:]), rng=0, file=out,
                     optimizer=lambda cost, params: nn.adam(cost, params, learning_rate=0.05))
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 4 for v in history.values())
    assert history["loss"][-1] < history["loss"][0]
    assert history["val_accuracy"][-1] > 0.9
    assert model[1].running_mean.get_value().any(), "batch-norm statistics were not updated"
    text = out.getvalue()
    lines = text.split("\n")
    assert len(lines) == 5 and lines[-1] == ""
    for epoch, line in enumerate(lines[:4], 1):
        final = line.split("\r")[-1]
        assert final.startswith(f"epoch {epoch}/4  loss ") and "val_accuracy" in final
        assert f"epoch {epoch}/4 [" in line and "6/6" in line  # the in-place progress bar


def test_fit_a_compiled_model_then_predict():
    x, y = blobs()
    compiled = nn.compile_model(small_model(1), x, y, optimizer=lambda c, p: nn.sgd(c, p, 0.2))
    nn.fit(compiled, (x, y), epochs=5, batch_size=20, verbose=False, rng=1)
    assert np.mean(np.argmax(compiled.predict(x), axis=1) == y) > 0.95
    loss, scores = compiled.evaluate(x, y)
    assert scores.shape == (len(y), 3) and float(loss) < 0.5


def test_fit_a_plain_training_function():
    w = gc.shared(np.zeros(2), name="w")
    x, t = gt.dmatrix("x"), gt.dvector("t")
    cost = nn.mse(gt.dot(x, w), t)
    train = gc.function([x, t], cost, updates=nn.sgd(cost, [w], 0.1))
    data = np.random.default_rng(0).normal(size=(64, 2))
    history = nn.fit(train, (data, data @ np.array([1.0, -2.0])), epochs=30, batch_size=8,
                     verbose=False, shuffle=False)
    assert list(history) == ["loss"]
    np.testing.assert_allclose(w.get_value(), [1.0, -2.0], atol=1e-3)


@pytest.mark.parametrize("kwargs,error,match", [
    ({"data": (np.zeros((3, 2)), np.zeros(2))}, ValueError, "3 inputs but 2 targets"),
    ({"data": np.zeros((3, 2))}, TypeError, r"\(inputs, targets\) pair"),
    ({"batch_size": 0}, ValueError, "batch_size >= 1"),
    ({"model": "model"}, TypeError, "must be a Layer"),
    ({"model": lambda x, y: 0.0, "validation_data": (np.zeros((1, 2)), np.zeros(1))},
     ValueError, "needs evaluate="),
])
def test_fit_errors(kwargs, error, match):
    args = {"model": lambda x, y: 0.0, "data": (np.zeros((3, 2)), np.zeros(3)), **kwargs}
    with pytest.raises(error, match=match):
        nn.fit(args.pop("model"), args.pop("data"), verbose=False, **args)


def test_save_and_load_round_trip(tmp_path):
    model = small_model(0)
    x, y = blobs(40)
    nn.fit(model, (x, y), epochs=1, verbose=False)
    path = nn.save_params(tmp_path / "model", model)
    assert path.name == "model.npz" and path.exists()
    other = small_model(5)
    assert not np.array_equal(other[0].W.get_value(), model[0].W.get_value())
    nn.load_params(path, other)
    for name, var in model.variables().items():
        np.testing.assert_array_equal(other.variables()[name].get_value(), var.get_value())
    xs = gt.matrix("x", dtype="float32")
    predict = [gc.function([xs], m(xs)) for m in (model, other)]
    np.testing.assert_array_equal(predict[0](x), predict[1](x))


def test_save_and_load_lists_and_dicts_of_layers(tmp_path):
    layers = [nn.Dense(2, 3, rng=0), nn.Embedding(4, 2, rng=1)]
    nn.save_params(tmp_path / "list.npz", layers)
    assert sorted(np.load(tmp_path / "list.npz").files) == ["0.W", "0.b", "1.W"]
    nn.save_params(tmp_path / "dict.npz", {"enc": layers[0]})
    fresh = nn.Dense(2, 3, rng=9)
    nn.load_params(tmp_path / "dict.npz", {"enc": fresh})
    np.testing.assert_array_equal(fresh.W.get_value(), layers[0].W.get_value())


def test_load_checks_names_shapes_and_dtypes_before_changing_anything(tmp_path):
    path = nn.save_params(tmp_path / "dense.npz", nn.Dense(3, 2, rng=0, dtype="float32"))
    wider = nn.Dense(3, 4, rng=1, dtype="float32")
    before = wider.W.get_value()
    with pytest.raises(ValueError, match=r"W \(dense.W\) has shape \(3, 2\).*expects \(3, 4\)"):
        nn.load_params(path, wider)
    np.testing.assert_array_equal(wider.W.get_value(), before)
    with pytest.raises(ValueError, match=r"missing \['W', 'b'\], unexpected \['0.W', '0.b'\]"):
        nn.load_params(nn.save_params(tmp_path / "list.npz", [nn.Dense(3, 2)]), nn.Dense(3, 2))
    np.savez(tmp_path / "ints.npz", W=np.zeros((3, 2), "int64"), b=np.zeros(2, "complex64"))
    with pytest.raises(TypeError, match="b .* complex64 .* cannot be cast"):
        nn.load_params(tmp_path / "ints.npz", nn.Dense(3, 2, dtype="float32"))
    with pytest.raises(FileNotFoundError):
        nn.load_params(tmp_path / "absent.npz", nn.Dense(3, 2))
    with pytest.raises(TypeError, match="expected a Layer"):
        nn.save_params(tmp_path / "x.npz", "model")
