"""The explorer page in headless Chromium (Debian's ``chromium``), against a real server on
127.0.0.1: draw a digit and see it named, click a conv cell and check its sum + bias against
the library, train for one epoch and watch the curve and filters, and no broken image.

The model is LeNet-5 trained here for a few epochs on drawn shapes of three digits (0 as a
ring, 1 as an upright stroke, 7 as a bar with a slanted stroke), stored as a fake ``digits``
cache, so it is prepared for the model exactly as MNIST digits are."""

import base64
import shutil
import threading
import time

import numpy as np
import pytest
from PIL import Image, ImageDraw

uvicorn = pytest.importorskip("uvicorn")
sync_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")

from convscope.cli import main  # noqa: E402
from convscope.cli.serve import bind  # noqa: E402
from convscope.data.preprocess import preprocess_image  # noqa: E402
from convscope.io import load_model  # noqa: E402
from convscope.trace import trace  # noqa: E402
from convscope.web import create_app  # noqa: E402


def shape_image(label, rng):
    """One 28x28 light-on-black drawing of digit 0, 1 or 7, MNIST-sized (about 20 px tall)."""
    image = Image.new("L", (28, 28), 0)
    draw = ImageDraw.Draw(image)
    width = int(rng.integers(2, 4))
    cx, cy = 14 + rng.integers(-2, 3), 14 + rng.integers(-2, 3)
    if label == 0:
        rx, ry = rng.integers(5, 8), rng.integers(8, 11)
        draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], outline=255, width=width)
    elif label == 1:
        lean = rng.integers(-3, 4)
        draw.line([(cx + lean, cy - 10), (cx - lean, cy + 10)], fill=255, width=width)
    else:
        draw.line([(cx - 7, cy - 9), (cx + 7, cy - 9)], fill=255, width=width)
        draw.line([(cx + 7, cy - 9), (cx - 2 + rng.integers(-2, 3), cy + 10)], fill=255, width=width)
    return np.asarray(image)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    rng = np.random.default_rng(0)
    labels = np.array([0, 1, 7] * 200)
    images = np.stack([shape_image(k, rng) for k in labels])[:, None]
    (root / "cache" / "digits").mkdir(parents=True)
    np.savez(root / "cache" / "digits" / "digits.npz", images=images, labels=labels.astype(np.int64),
             is_val=np.arange(len(labels)) % 6 == 0)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CONVSCOPE_DATA", str(root / "cache"))
        assert main(["train", "--epochs", "4", "--out", str(root / "runs" / "shapes"), "--no-report"]) == 0
        app = create_app(None, runs=root / "runs")
        sock = bind("127.0.0.1", 0)
        web = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        thread = threading.Thread(target=web.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        while not web.started:
            time.sleep(0.02)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/", root
        web.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    url, _ = server
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url)
    page.wait_for_function("document.querySelectorAll('.layer canvas').length > 0")
    yield page
    page.close()
    assert not errors, errors  # no script error on the page


def draw(page, points):
    """Drag the mouse through ``points`` (in the 280x280 pad's pixels)."""
    box = page.locator("#pad").bounding_box()
    page.click("#clear")
    page.mouse.move(box["x"] + points[0][0], box["y"] + points[0][1])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(box["x"] + x, box["y"] + y, steps=2)
    page.mouse.up()


def predicted_after(page, points):
    draw(page, points)
    # the page sends the newest drawing when the update in flight returns (and paces itself):
    # the prediction shown is the final drawing's once nothing is in flight, waiting or paced
    page.wait_for_function("!state.inFlight && !state.dirty && !state.paced")
    page.wait_for_function("!document.querySelector('#status').textContent.includes('opening')")
    page.wait_for_function("document.querySelector('#prediction').dataset.predicted !== undefined")
    return page.locator("#prediction").get_attribute("data-predicted")


def ring(cx=140, cy=140, rx=60, ry=90, n=40):
    return [(cx + rx * np.sin(a), cy - ry * np.cos(a)) for a in np.linspace(0, 2 * np.pi, n)]


def test_drawing_a_digit_names_it(page):
    page.select_option("#model", label=page.locator("#model option", has_text="shapes").first.inner_text())
    assert predicted_after(page, [(150, 40), (140, 140), (130, 240)]) == "1"
    assert predicted_after(page, ring()) == "0"
    assert predicted_after(page, [(60, 50), (220, 50), (120, 250)]) == "7"
    assert page.locator("#prepared").evaluate("img => img.naturalWidth") == 28  # the prepared input is shown
    assert "centred by mass" in page.locator("#notes").inner_text()


def test_a_clicked_conv_cell_shows_the_librarys_value(page, server):
    _, root = server
    predicted_after(page, ring())
    canvas = page.locator(".layer[data-layer='0'] canvas").nth(3)
    box = canvas.bounding_box()
    canvas.click(position={"x": box["width"] * 0.5, "y": box["height"] * 0.3})
    page.wait_for_selector("#cell [data-sum]")
    shown = page.locator("#cell [data-sum]")
    total, bias = float(shown.get_attribute("data-sum")), float(shown.get_attribute("data-bias"))
    channel, y, x = (int(v) for v in page.locator("#cell [data-cell]").get_attribute("data-cell").split(","))
    assert channel == 3
    uri = page.evaluate("state.input.image")  # the drawing as the page sent it
    model, meta = load_model(root / "runs" / "shapes" / "model.safetensors")
    x_in, _ = preprocess_image(base64.b64decode(uri.split(",")[1]), meta)
    value = float(trace(model, x_in)["0"].values[0, channel, y, x])
    assert total + bias == pytest.approx(value, abs=1e-5)
    assert page.locator("#field-box").is_visible()  # the receptive field, drawn on the input
    page.locator(".layer[data-layer='0'] canvas").nth(3).press("ArrowRight")  # keyboard: the next cell
    page.wait_for_function(f"document.querySelector('#cell [data-cell]').dataset.cell === '3,{y},{x + 1}'")


def no_broken_images(page):
    return page.evaluate("""[...document.images].filter(img => img.getAttribute('src'))
                            .filter(img => !img.complete || img.naturalWidth === 0).map(img => img.alt)""")


def test_look_inside_views_and_no_broken_image(page, tmp_path):
    predicted_after(page, ring())
    for view, wanted in [("filters", "img"), ("saliency", "img"), ("pooling", "img"), ("summary", "pre"),
                         ("explain", "h3")]:
        page.click(f"[data-view={view}]")
        page.wait_for_selector(f"#inside {wanted}")
        assert not page.locator("#inside .error").count(), page.locator("#inside").inner_text()
        assert no_broken_images(page) == []
    page.screenshot(path=str(tmp_path / "explorer.png"), full_page=True)


def test_training_one_epoch_updates_the_curve_and_filters(page):
    page.fill("#train-data", "digits")
    page.fill("#train-epochs", "1")
    page.fill("#train-batch", "16")
    page.click("#train-start")
    page.wait_for_function("document.querySelector('#train-status').dataset.state === 'finished'", timeout=120_000)
    assert int(page.locator("#curve").get_attribute("data-points")) > 10
    assert page.locator("#curve").get_attribute("data-epochs") == "1"
    assert page.locator("#train-filters").evaluate("img => img.naturalWidth") > 0
    assert page.locator("#train-maps canvas").count() > 0
    assert no_broken_images(page) == []
    page.reload()  # a reload reconnects to the (finished) job
    page.wait_for_function("document.querySelector('#train-status').dataset.state === 'finished'")


def test_switching_models_drops_what_belonged_to_the_last_one(page):
    page.select_option("#model", page.locator("#model option", has_text="shapes").first.get_attribute("value"))
    page.wait_for_function("state.network && state.network.name === 'lenet5' && state.samples")
    page.click("#sample-next")  # a validation image of the run's data set
    page.wait_for_function("state.update && state.update.input.label !== null")
    page.locator(".layer[data-layer='0'] canvas").first.click()
    page.wait_for_selector("#cell [data-sum]")
    page.select_option("#model", "zoo:resnet")  # untrained, no data set to take that image from
    page.wait_for_function("state.network && state.network.model === 'zoo:resnet' && !state.samples")
    page.wait_for_timeout(300)
    assert page.locator("#status.error").count() == 0, page.locator("#status").inner_text()
    assert page.evaluate("state.input") is None and "draw something" in page.locator("#prediction").inner_text()
    assert page.locator("#cell [data-sum]").count() == 0 and page.locator("#field-box").is_hidden()
    # an update still on its way for the model shown before a switch is not drawn into the next one
    page.evaluate("""() => {
      window.drawn = [];
      const show = window.showUpdate, send = window.fetch;
      window.showUpdate = (a) => { window.drawn.push([a.model, state.model]); show(a); };
      window.fetch = (url, options) => String(url).includes("/api/update")
        ? new Promise((done) => setTimeout(done, 800)).then(() => send(url, options)) : send(url, options);
    }""")
    draw(page, ring())
    page.wait_for_timeout(100)
    page.select_option("#model", "zoo:lenet5")
    page.wait_for_function("window.drawn.some(([answer]) => answer === 'zoo:lenet5')", timeout=10_000)
    assert all(answer == shown for answer, shown in page.evaluate("window.drawn")), page.evaluate("window.drawn")


def test_each_layer_is_one_tab_stop_and_page_keys_move_between_its_maps(page):
    stops = page.evaluate("""() => [...document.querySelectorAll('.layer')].map(
        (column) => [...column.querySelectorAll('canvas')].filter((c) => c.tabIndex === 0).length)""")
    assert set(stops) == {1}  # not one per map: a ResNet has hundreds
    predicted_after(page, ring())
    first = page.locator(".layer[data-layer='0'] canvas").nth(0)
    first.press("Enter")
    shown = "(document.querySelector('#cell [data-cell]') || {dataset: {}}).dataset.cell"
    page.wait_for_function(f"{shown} === '0,0,0'")
    page.keyboard.press("PageDown")
    page.wait_for_function(f"{shown} === '1,0,0'")
    assert page.evaluate("document.activeElement.dataset.channel") == "1"
    assert page.locator(".layer[data-layer='0'] canvas[tabindex='0']").get_attribute("data-channel") == "1"


def test_a_segmentation_model_opens_and_updates(page):
    page.select_option("#model", "zoo:unet")
    page.wait_for_function("document.querySelectorAll('.layer[data-layer] canvas').length > 11")
    predicted_after(page, ring())
    assert "share of the image's pixels" in page.locator("#prediction").inner_text()
    assert no_broken_images(page) == []
