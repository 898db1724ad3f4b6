"""The explorer's HTTP API, through Starlette's TestClient: every endpoint, every number
checked against the library, and every bad input answered with a 4xx JSON error."""

import base64
import io
import json
import re
import time

import numpy as np
import pytest
from PIL import Image, ImageDraw

pytest.importorskip("starlette.testclient")  # Starlette's test client needs httpx2 (or httpx)
from starlette.datastructures import Headers  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from convscope import nn  # noqa: E402
from convscope.cli import main  # noqa: E402
from convscope.data import load_dataset, normalise  # noqa: E402
from convscope.data.preprocess import preprocess_image  # noqa: E402
from convscope.inference import predict  # noqa: E402
from convscope.io import load_model, save_model  # noqa: E402
from convscope.trace import trace  # noqa: E402
from convscope.viz.invariance import shift  # noqa: E402
from convscope.web import create_app  # noqa: E402
from convscope.web.app import MAX_BODY, foreign  # noqa: E402

RUN = "lenet5-digits"


def png_uri(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def drawn_bar(row: int = 100) -> str:
    """A canvas like the page's: white, with a thick black horizontal stroke."""
    image = Image.new("L", (280, 280), 255)
    ImageDraw.Draw(image).line([(40, row), (240, row)], fill=0, width=20)
    return png_uri(image)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A trained one-epoch run on the fake digits cache, and a client of the explorer over it."""
    root = tmp_path_factory.mktemp("web")
    rng = np.random.default_rng(0)
    labels = np.arange(300) % 10
    images = (rng.random((300, 1, 28, 28)) * 40).astype(np.uint8)
    for k in range(10):
        images[labels == k, 0, 4 + 2 * k, 6:22] = 255
    (root / "cache" / "digits").mkdir(parents=True)
    np.savez(root / "cache" / "digits" / "digits.npz", images=images, labels=labels.astype(np.int64),
             is_val=np.arange(300) % 5 == 0)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CONVSCOPE_DATA", str(root / "cache"))
        assert main(["train", "--epochs", "1", "--out", str(root / "runs" / RUN), "--no-report",
                     "--no-augment", "--batch-size", "32"]) == 0
        app = create_app(None, runs=root / "runs")
        with TestClient(app, base_url="http://127.0.0.1") as client:
            yield client, root


def run_id(root):
    return str(root / "runs" / RUN)


def model_of(root):
    return load_model(root / "runs" / RUN / "model.safetensors")


def ok(response):
    assert response.status_code == 200, response.text
    return response.json()


def error(response, status, *words):
    assert response.status_code == status, response.text
    message = response.json()["error"]
    assert all(w in message for w in words), message
    return message


# ----- the page and the model list ---------------------------------------------------------------
def test_page_and_its_files_are_served(served):
    client, _ = served
    page = client.get("/")
    assert page.status_code == 200 and "convscope explorer" in page.text
    scripts = re.findall(r'src="(/static/[^"]+)"', page.text)
    assert len(scripts) >= 5 and all(client.get(path).status_code == 200 for path in scripts + ["/static/style.css"])
    assert "https://" not in page.text and "http://" not in page.text  # nothing from the network


def test_models_lists_the_runs_and_the_zoo(served):
    client, root = served
    listing = ok(client.get("/api/models"))
    ids = [m["id"] for m in listing["models"]]
    assert run_id(root) in ids and "zoo:lenet5" in ids and "zoo:resnet" in ids
    run = next(r for r in listing["runs"] if r["id"] == run_id(root))
    assert run["state"] == "finished" and run["epochs_done"] == 1 and not run["resumable"]
    assert listing["current"] in ids


def test_network_matches_the_trace(served):
    client, root = served
    net = ok(client.get("/api/network", params={"model": run_id(root)}))
    model, meta = model_of(root)
    t = trace(model, np.zeros((1, 1, 28, 28), np.float32))
    assert [layer["name"] for layer in net["layers"]] == [layer.name for layer in t.layers]
    assert [layer["shape"] for layer in net["layers"]] == [list(layer.output_shape[1:]) for layer in t.layers]
    assert net["params"] == sum(p.size for p in model.parameters())
    assert net["layers"][0]["input"] == "input" and net["layers"][1]["input"] == net["layers"][0]["name"]
    assert net["classes"] == meta["class_names"] and "Output size" in net["summary"]


# ----- live updates ----------------------------------------------------------------------------------
def test_update_of_a_drawing_equals_predict_on_the_same_image(served):
    client, root = served
    uri = drawn_bar()
    answer = ok(client.post("/api/update", json={"model": run_id(root), "image": uri}))
    model, meta = model_of(root)
    x, notes = preprocess_image(base64.b64decode(uri.split(",")[1]), meta)
    probs = predict(model, x)[0]
    np.testing.assert_allclose(answer["prediction"]["probabilities"], probs, atol=1e-6)
    assert answer["prediction"]["predicted"] == int(probs.argmax())
    assert answer["input"]["notes"] == notes and answer["server_ms"] > 0
    t = trace(model, x)
    for shown, layer in zip(answer["layers"], t.layers):
        values = layer.values[0]
        assert shown["name"] == layer.name and shown["shape"] == list(values.shape)
        assert shown["lo"] == pytest.approx(float(values.min())) and shown["hi"] == pytest.approx(float(values.max()))
        grey = np.frombuffer(base64.b64decode(shown["data"]), np.uint8).reshape(values.shape)
        assert grey.flat[int(values.argmax())] == 255 and grey.flat[int(values.argmin())] == (
            0 if values.max() > values.min() else grey.flat[0])


def test_a_validation_sample_and_a_shift(served):
    client, root = served
    model, meta = model_of(root)
    val = load_dataset("digits", split="val")
    index = int(np.flatnonzero(val.labels == 5)[1])
    x = normalise(val.images[index:index + 1], meta["mean"], meta["std"])
    answer = ok(client.post("/api/update", json={"model": run_id(root), "sample": {"label": 5, "n": 1}}))
    assert answer["input"]["label"] == 5
    np.testing.assert_allclose(answer["prediction"]["probabilities"], predict(model, x)[0], atol=1e-6)
    moved = ok(client.post("/api/update", json={"model": run_id(root), "sample": {"label": 5, "n": 1},
                                                "shift": [2, -3]}))
    black = -np.asarray(meta["mean"], np.float32) / np.asarray(meta["std"], np.float32)
    expected = predict(model, shift(x, 2, -3, black))[0]
    np.testing.assert_allclose(moved["prediction"]["probabilities"], expected, atol=1e-6)
    counts = ok(client.get("/api/samples", params={"model": run_id(root)}))
    assert counts["counts"] == np.bincount(val.labels, minlength=10).tolist()


# ----- a cell's arithmetic --------------------------------------------------------------------------
def _traced(root, uri):
    model, meta = model_of(root)
    x, _ = preprocess_image(base64.b64decode(uri.split(",")[1]), meta)
    return trace(model, x)


def test_a_conv_cell_shows_the_sum_and_bias_the_library_computes(served):
    client, root = served
    uri = drawn_bar()
    t = _traced(root, uri)
    conv = t.layers[0]
    body = {"model": run_id(root), "image": uri, "layer": conv.name, "channel": 2, "y": 12, "x": 9}
    cell = ok(client.post("/api/cell", json=body))
    expected = float(conv.values[0, 2, 12, 9])
    assert cell["kind"] == "conv" and cell["value"] == pytest.approx(expected, abs=1e-6)
    assert cell["sum"] + cell["bias"] == pytest.approx(expected, abs=1e-5)
    np.testing.assert_allclose(np.asarray(cell["products"]),
                               np.asarray(cell["inputs"]) * np.asarray(cell["weights"]), rtol=1e-5, atol=1e-7)
    assert cell["field"] is not None


def test_linear_and_output_cells(served):
    client, root = served
    uri = drawn_bar()
    t = _traced(root, uri)
    last = t.layers[-1]
    cell = ok(client.post("/api/cell", json={"model": run_id(root), "image": uri, "layer": last.name,
                                             "channel": 4}))
    assert cell["value"] == pytest.approx(float(last.values[0, 4]), abs=1e-5)
    np.testing.assert_allclose(cell["softmax"]["probabilities"], t.probabilities()[0], atol=1e-6)
    assert cell["classes"][4] == "4"


# ----- pictures and texts ----------------------------------------------------------------------------
def _png(src):
    assert src.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(src.split(",")[1])))


def test_filters_saliency_pooling_explain(served):
    client, root = served
    filters = ok(client.get("/api/filters", params={"model": run_id(root)}))
    assert len(filters["pictures"]) == 2 and all(_png(p["src"]).size[0] > 50 for p in filters["pictures"])
    body = {"model": run_id(root), "image": drawn_bar()}
    saliency = ok(client.post("/api/saliency", json=body))
    assert [p["name"] for p in saliency["pictures"]] == ["saliency", "gradcam"]
    pooled = ok(client.post("/api/pooling", json=dict(body, layer="3", channel=5)))
    assert _png(pooled["pictures"][0]["src"]).size[0] > 100
    for depth in ("concepts", "technical", "math"):
        text = ok(client.get("/api/explain", params={"model": run_id(root), "depth": depth}))["markdown"]
        assert text.startswith("# LeNet5") and f"({depth})" in text.splitlines()[0]


def test_zoo_models_work_without_a_dataset(served):
    client, _ = served
    net = ok(client.get("/api/network", params={"model": "zoo:resnet"}))
    assert any("." in layer["name"] for layer in net["layers"])  # blocks and their layers
    uri = png_uri(Image.new("RGB", (64, 48), (200, 30, 30)))
    answer = ok(client.post("/api/update", json={"model": "zoo:resnet", "image": uri}))
    assert len(answer["prediction"]["probabilities"]) == 10
    error(client.get("/api/samples", params={"model": "zoo:resnet"}), 404, "no dataset")


# ----- bad input: a 4xx JSON error, and the server goes on -------------------------------------------
EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 20 20\nnewpath 2 2 moveto 18 18 lineto stroke\n%%EOF\n"


def bomb_uri():
    buffer = io.BytesIO()
    Image.new("1", (20000, 20000)).save(buffer, format="PNG")  # 400 megapixels in a few KB
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


@pytest.mark.parametrize("path, body, status, words", [
    ("/api/update", {"image": drawn_bar()}, 400, ["model id"]),
    ("/api/update", {"model": "/etc/passwd", "image": drawn_bar()}, 404, ["not offered"]),
    ("/api/update", {"model": "zoo:lenet5"}, 400, ["no input"]),
    ("/api/update", {"model": "zoo:lenet5", "image": "hello"}, 400, ["data:image"]),
    ("/api/update", {"model": "zoo:lenet5", "image": "data:image/png;base64,@@@"}, 400, ["base64"]),
    ("/api/update", {"model": "zoo:lenet5", "image": "data:image/png;base64," + base64.b64encode(b"text").decode()},
     415, ["not a readable image"]),
    ("/api/update", {"model": "zoo:lenet5", "image": png_uri(Image.new("L", (50, 50), 255))}, 422, ["blank"]),
    ("/api/update", {"model": "zoo:lenet5", "image": drawn_bar(), "shift": [30, 0]}, 400, ["shift"]),
    ("/api/update", {"model": "zoo:lenet5", "sample": {"label": 3}}, 400, ["sample"]),
    ("/api/update", {"model": "zoo:lenet5", "sample": {"label": True, "n": 0}}, 400, ["sample", "True"]),
    ("/api/update", {"model": "zoo:lenet5", "image": "data:image/png;base64," + base64.b64encode(EPS).decode()},
     415, ["not a readable image", "PNG"]),  # Pillow would hand EPS to Ghostscript
    ("/api/cell", {"model": "zoo:lenet5", "image": drawn_bar(), "layer": "nope", "channel": 0, "y": 0, "x": 0},
     404, ["nope"]),
    ("/api/cell", {"model": "zoo:lenet5", "image": drawn_bar(), "layer": "0", "channel": 0, "y": 99, "x": 0},
     404, ["99"]),
    ("/api/cell", {"model": "zoo:lenet5", "image": drawn_bar(), "layer": "0", "channel": "a"}, 400, ["channel"]),
    ("/api/cell", {"model": "zoo:lenet5", "image": drawn_bar(), "layer": "0", "channel": True, "y": 0, "x": 0},
     400, ["channel", "True"]),
    ("/api/pooling", {"model": "zoo:lenet5", "image": drawn_bar(), "layer": "0", "channel": True}, 400,
     ["channel", "True"]),
    ("/api/pooling", {"model": "zoo:lenet5", "image": drawn_bar(), "layer": "9", "channel": 0}, 422, ["not feature"]),
    ("/api/train", {"model": "alexnet"}, 400, ["model", "lenet5"]),
    ("/api/train", {"epochs": 0}, 400, ["epochs"]),
    ("/api/train", {"lr": "fast"}, 400, ["lr"]),
    ("/api/train", {"out": "../escape"}, 400, ["folder name"]),
    ("/api/train", {"data": "/etc"}, 403, ["'/etc'", "folder inside the folder the server was started in"]),
    ("/api/train", {"data": "../../.."}, 403, ["folder inside"]),
    ("/api/train", {"resume": "/tmp"}, 404, ["cannot resume"]),
    ("/api/train/stop", {}, 409, ["no training"]),
])
def test_bad_requests_get_a_clear_4xx(served, path, body, status, words):
    client, _ = served
    error(client.post(path, json=body), status, *words)
    assert client.get("/api/models").status_code == 200  # still serving


def test_oversized_malformed_and_bomb_requests(served):
    client, _ = served
    error(client.post("/api/update", content=b"{" * 10, headers={"content-type": "application/json"}),
          400, "malformed JSON")
    error(client.post("/api/update", json=[1, 2]), 400, "JSON object")
    for path in ("/api/update", "/api/train"):  # deeper than Python's JSON reader recurses
        error(client.post(path, content=b"[" * 100_000), 400, "nested too deeply")
    error(client.post("/api/update", content=b"x" * (MAX_BODY + 1)), 413, "MiB")

    def stream():  # no Content-Length: refused while reading
        for _ in range(MAX_BODY // 2**16 + 2):
            yield b" " * 2**16
    error(client.post("/api/update", content=stream()), 413, "larger than")
    error(client.post("/api/update", json={"model": "zoo:lenet5", "image": bomb_uri()}), 413, "megapixels")
    error(client.get("/api/nothing"), 404, "/api/nothing")
    error(client.delete("/api/models"), 405, "DELETE")
    error(client.get("/api/explain", params={"model": "zoo:lenet5", "depth": "deep"}), 400, "depth")
    error(client.get("/api/train", params={"since": "x"}), 400, "since")


def test_saliency_of_a_model_without_conv_layers(tmp_path):
    rng = np.random.default_rng(0)
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(784, 16, rng=rng), nn.ReLU(), nn.Linear(16, 3, rng=rng))
    save_model(tmp_path / "mlp.safetensors", mlp, class_names=["cat", "dog", "<b>"], input_shape=(1, 28, 28))
    with TestClient(create_app(str(tmp_path / "mlp.safetensors"), runs=tmp_path / "runs"),
                    base_url="http://127.0.0.1") as client:
        body = {"model": str(tmp_path / "mlp.safetensors"), "image": drawn_bar()}
        assert ok(client.post("/api/update", json=body))["prediction"]["classes"] == ["cat", "dog", "<b>"]
        error(client.post("/api/saliency", json=body), 422, "no conv layer")


# ----- only the server's own page ---------------------------------------------------------------------------
def test_another_sites_page_is_refused(served):
    client, _ = served
    # a page elsewhere posting here (a text/plain POST needs no CORS preflight): nothing starts
    error(client.post("/api/train", content=b'{"epochs": 1}', headers={"origin": "http://evil.example",
                                                                       "content-type": "text/plain"}),
          403, "'http://evil.example'", "own page")
    assert ok(client.get("/api/train"))["state"] in ("idle", "finished", "stopped")
    # a page that renamed itself to 127.0.0.1 (DNS rebinding) reads nothing
    error(client.get("/api/models", headers={"host": "evil.example:8000"}), 403, "'evil.example:8000'")
    error(client.get("/", headers={"host": "evil.example"}), 403, "127.0.0.1")
    error(client.post("/api/train/stop", json={}, headers={"origin": "http://127.0.0.1"}), 409, "no training")
    for host in ("localhost:8000", "[::1]:8000", "127.0.0.1"):
        assert foreign(Headers({"host": host, "origin": f"http://{host}"}), True) is None
    assert foreign(Headers({"host": "[::1"}), True) is not None  # malformed


def test_a_shared_server_answers_any_host_but_only_its_own_page(tmp_path):
    with TestClient(create_app(None, runs=tmp_path, host="0.0.0.0"), base_url="http://192.168.1.5:8000") as client:
        assert ok(client.get("/api/config"))["datasets"]
        error(client.post("/api/train", json={}, headers={"origin": "http://evil.example"}), 403, "own page")
        error(client.post("/api/train/stop", json={}, headers={"origin": "http://192.168.1.5:8000"}), 409,
              "no training")


# ----- training from the page ---------------------------------------------------------------------------
def wait_for(client, states, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = ok(client.get("/api/train"))
        if status["state"] in states:
            return status
        time.sleep(0.05)
    raise AssertionError(f"training did not reach {states}: {status['state']}")


def run_entry(client, name):
    return next(r for r in ok(client.get("/api/models"))["runs"] if r["name"] == name)


def test_train_pause_stop_resume_from_the_page(served):
    client, root = served
    started = ok(client.post("/api/train", json={"epochs": 3, "batch_size": 8, "augment": False, "out": "web-run"}))
    assert started["run"] == str(root / "runs" / "web-run")
    error(client.post("/api/train", json={"epochs": 1}), 409, "already")  # two at once
    while not ok(client.get("/api/train"))["history"]:
        time.sleep(0.02)
    ok(client.post("/api/train/pause", json={}))
    paused = wait_for(client, {"paused"})
    steps = len(paused["curve"])
    time.sleep(0.3)
    assert len(ok(client.get("/api/train"))["curve"]) == steps  # nothing trains while paused
    assert paused["filters"].startswith("data:image/png") and paused["maps"][0]["shape"][0] == 6
    unchanged = ok(client.get("/api/train", params={"since": paused["pictures"]}))
    assert "filters" not in unchanged and unchanged["pictures"] == paused["pictures"]
    ok(client.post("/api/train/stop", json={}))  # while paused, in the middle of epoch 2 or 3
    stopped = wait_for(client, {"stopped"})
    run = run_entry(client, "web-run")
    assert run["epochs_done"] == len(stopped["history"]) < 3 and run["resumable"] and run["state"] == "interrupted"
    ok(client.post("/api/train", json={"resume": run["id"]}))
    finished = wait_for(client, {"finished"})
    assert [r["epoch"] for r in finished["history"]] == list(range(run["epochs_done"] + 1, 4))
    folder = root / "runs" / "web-run"
    assert {"run.json", "checkpoint.safetensors", "model.safetensors", "metrics.jsonl", "report.html"} <= {
        p.name for p in folder.iterdir()}
    assert [json.loads(line)["epoch"] for line in open(folder / "metrics.jsonl")] == [1, 2, 3]
    assert run_entry(client, "web-run")["state"] == "finished"
    # the command line takes the run over: it is finished, so resuming trains nothing
    assert main(["train", "--resume", "--out", str(folder), "--no-report"]) == 0


def test_a_run_stopped_in_its_first_epoch_starts_again(served):
    client, root = served
    ok(client.post("/api/train", json={"epochs": 1, "batch_size": 4, "lr": 0.01, "out": "early-stop"}))
    ok(client.post("/api/train/pause", json={}))
    wait_for(client, {"paused"})
    ok(client.post("/api/train/stop", json={}))
    wait_for(client, {"stopped"})
    run = run_entry(client, "early-stop")
    assert run["epochs_done"] == 0 and run["resumable"]
    ok(client.post("/api/train", json={"resume": run["id"]}))
    finished = wait_for(client, {"finished"})
    assert finished["settings"]["lr"] == 0.01 and finished["settings"]["batch_size"] == 4


def test_worker_processes_answer_as_the_server_itself_does(served):
    client, root = served
    body = {"model": run_id(root), "image": drawn_bar(), "layer": "0", "channel": 1, "y": 10, "x": 12}
    here = {path: ok(client.post(path, json=body)) for path in ("/api/update", "/api/cell")}
    with TestClient(create_app(None, runs=root / "runs", workers=1), base_url="http://127.0.0.1") as pooled:
        for path, expected in here.items():
            answer = ok(pooled.post(path, json=body))
            answer.pop("server_ms"), expected.pop("server_ms")
            assert answer == expected
        error(pooled.post("/api/cell", json=dict(body, y=99)), 404, "99")
        error(pooled.post("/api/update", content=b"[1"), 400, "malformed JSON")
        live = pooled.app.state.live
        for process in live.pool._processes.values():  # a worker dies: the next request is refused, then served
            process.kill()
        assert pooled.post("/api/update", json=body).status_code in (200, 503)
        assert ok(pooled.post("/api/update", json=body))["prediction"] == here["/api/update"]["prediction"]


def test_a_segmentation_model_shows_the_share_of_pixels_per_class(served):
    client, _ = served
    uri = drawn_bar()
    answer = ok(client.post("/api/update", json={"model": "zoo:unet", "image": uri}))
    from convscope.io import zoo_model
    from convscope.tasks import Segmentation
    model, meta = zoo_model("unet")
    x, _ = preprocess_image(base64.b64decode(uri.split(",")[1]), meta)
    labels = Segmentation(11).predictions(trace(model, x).output.data)[0]
    expected = np.bincount(labels.ravel(), minlength=11) / labels.size
    prediction = answer["prediction"]
    assert prediction["per_pixel"] and len(prediction["classes"]) == 11
    np.testing.assert_allclose(prediction["probabilities"], expected, atol=1e-6)
    assert sum(prediction["probabilities"]) == pytest.approx(1.0)
    net = ok(client.get("/api/network", params={"model": "zoo:unet"}))
    assert net["layers"][-1]["shape"] == [11, 64, 64]
