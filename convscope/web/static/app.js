// convscope explorer: the model list, the drawing pad, the live updates, start-up. No CNN maths here: every number shown comes from the
// server's library calls (convscope.trace, convscope.arithmetic).
"use strict";

// ----- models ---------------------------------------------------------------------------
async function loadModels(preferred) {
  const listing = await api("/api/models");
  const select = $("model");
  select.innerHTML = "";
  for (const m of listing.models) select.add(new Option(m.label, m.id));
  select.value = preferred && listing.models.some((m) => m.id === preferred) ? preferred : listing.current;
  showResumable(listing.runs);
  return listing;
}

async function chooseModel(id) {
  state.model = id;
  state.chosen = null;
  $("cell").innerHTML = "<p class='note'>Click any cell of a feature map.</p>";  // the last model's cell
  $("field-box").hidden = true;
  say(`opening ${id} ...`);
  try {
    state.network = await api(`/api/network?model=${encodeURIComponent(id)}`);
  } catch (error) { say(error.message, true); return; }
  const net = state.network;
  $("model-note").textContent = `${net.name}: input ${net.input_shape.join("x")}, ${net.params.toLocaleString()} parameters` +
    (net.dataset ? `, trained on ${net.dataset}` : ", untrained");
  buildNetwork(net);
  await loadSamples();
  say("ready");
  state.sampleN = {};
  if (state.input && state.input.sample) state.input = null;  // a validation image of the last model's data
  if (state.input) requestUpdate(); else if (state.samples) showSample(); else showEmpty();
  await showInside();
}

async function loadSamples() {
  const select = $("sample-class");
  select.innerHTML = "";
  state.samples = null;
  try {
    state.samples = await api(`/api/samples?model=${encodeURIComponent(state.model)}`);
  } catch (error) {
    $("sample-row").title = error.message;
    select.add(new Option("none available", ""));
    select.disabled = $("sample-next").disabled = true;
    return;
  }
  select.disabled = $("sample-next").disabled = false;
  state.samples.classes.forEach((name, k) => select.add(new Option(`${name} (${state.samples.counts[k]} images)`, k)));
}

function showSample() {
  const label = Number($("sample-class").value || 0);
  const n = state.sampleN[label] || 0;
  state.sampleN[label] = (n + 1) % Math.max(1, state.samples.counts[label]);
  state.input = {sample: {label, n}};
  clearPad(false);
  requestUpdate();
}

// ----- the drawing pad ------------------------------------------------------------------
const pad = $("pad");
const ink = pad.getContext("2d");
let drawing = null;

function clearPad(update = true) {
  ink.fillStyle = "#fff";
  ink.fillRect(0, 0, pad.width, pad.height);
  if (!update) return;
  state.input = null;
  for (const axis of ["x", "y"]) { $(`shift-${axis}`).value = 0; $(`shift-${axis}-value`).textContent = "0"; }
  showEmpty();
}

function stroke(event) {
  const box = pad.getBoundingClientRect();
  const point = [(event.clientX - box.left) * pad.width / box.width, (event.clientY - box.top) * pad.height / box.height];
  const eraser = document.querySelector("input[name=tool]:checked").value === "eraser";
  ink.strokeStyle = eraser ? "#fff" : "#000";
  ink.lineWidth = Number($("brush").value) * (eraser ? 1.6 : 1);
  ink.lineCap = ink.lineJoin = "round";
  ink.beginPath();
  ink.moveTo(...(drawing || point));
  ink.lineTo(...point);
  ink.stroke();
  drawing = point;
  state.input = {image: drawingURL()};
  requestUpdate();
}

// The drawing is sent at 112x112 (four times a 28x28 input): the server prepares it as
// `convscope predict` prepares that image file, in a fifth of the time the full pad would take.
const SEND_SIDE = 112;
const sent = document.createElement("canvas");
sent.width = sent.height = SEND_SIDE;

function drawingURL() {
  const g = sent.getContext("2d");
  g.imageSmoothingEnabled = true;
  g.imageSmoothingQuality = "high";
  g.drawImage(pad, 0, 0, SEND_SIDE, SEND_SIDE);
  return sent.toDataURL("image/png");
}

pad.addEventListener("pointerdown", (e) => { pad.setPointerCapture(e.pointerId); drawing = null; stroke(e); });
pad.addEventListener("pointermove", (e) => { if (drawing) stroke(e); });
pad.addEventListener("pointerup", () => { drawing = null; });
pad.addEventListener("pointercancel", () => { drawing = null; });

$("upload").addEventListener("change", () => {
  const file = $("upload").files[0];
  if (!file) return;
  const reader = new FileReader();
  reader.onload = () => { state.input = {image: reader.result}; clearPad(false); requestUpdate(); };
  reader.readAsDataURL(file);
});

// ----- live updates: one request in flight; the newest drawing wins ------------------------------
// The next update waits at least PACE_MS after the last was sent, and BACKOFF times as long as
// the last one took: a busy server (many learners at once) gets fewer updates from each page,
// so every update stays quick.
const PACE_MS = 60, BACKOFF = 3;

async function requestUpdate() {
  if (!state.input || !state.model) return;
  if (state.inFlight) { state.dirty = true; return; }
  const wait = Math.max(PACE_MS, BACKOFF * (state.lastTook || 0)) - (performance.now() - (state.lastSent || 0));
  if (wait > 0) {
    if (!state.paced) state.paced = setTimeout(() => { state.paced = null; requestUpdate(); }, wait);
    return;
  }
  state.inFlight = true;
  state.dirty = false;
  state.lastSent = performance.now();
  try {
    const answer = await api("/api/update", inputRequest());
    state.lastTook = performance.now() - state.lastSent;
    if (answer.model === state.model && state.network && state.network.model === answer.model) {
      state.update = answer;  // (an answer for the model shown before a switch is dropped)
      showUpdate(answer);
      say(`updated in ${answer.server_ms.toFixed(1)} ms on the server`);
    }
  } catch (error) {
    const blank = error.message.includes("blank");  // a first dot is not yet a digit
    say(error.message, !blank);
    showEmpty(blank ? "draw a bit more" : "no prediction: " + error.message);
  } finally {
    state.inFlight = false;
  }
  if (state.dirty) requestUpdate();
  else { if (state.chosen) showCell(state.chosen); if (state.view === "saliency" || state.view === "pooling") showInside(); }
}

function showEmpty(message = "draw something") {  // nothing to show: no stale result stays on screen
  $("prepared").removeAttribute("src");
  $("prepared").hidden = true;
  $("notes").innerHTML = "";
  $("prediction").innerHTML = `<span class='note'>${escapeHtml(message)}</span>`;
  delete $("prediction").dataset.predicted;
  $("field-box").hidden = true;
  $("cell").innerHTML = "<p class='note'>Click any cell of a feature map.</p>";
  document.querySelectorAll(".maps canvas").forEach((c) => c.getContext("2d").clearRect(0, 0, c.width, c.height));
  document.querySelectorAll(".layer .range").forEach((r) => { r.textContent = ""; });
}

function showUpdate(answer) {
  $("prepared").src = answer.input.picture;
  $("prepared").hidden = false;
  $("notes").innerHTML = "";
  for (const note of answer.input.notes) {
    const li = document.createElement("li");
    li.textContent = note;
    $("notes").append(li);
  }
  showPrediction(answer.prediction);
  answer.layers.forEach((layer) => drawLayer(layer));
}

function showPrediction(prediction) {
  const box = $("prediction");
  box.innerHTML = "";
  if (prediction.centre) {  // a model that regresses a position: no classes
    const [x, y] = prediction.centre;
    const text = document.createElement("span");
    text.textContent = `centre (x, y) = (${x.toFixed(1)}, ${y.toFixed(1)}) px`;
    box.append(text);
    box.dataset.predicted = text.textContent;
    return;
  }
  if (prediction.per_pixel || prediction.per_object) {  // segmentation: shares of pixels; a detector: best scores
    const note = document.createElement("span");
    note.className = "note";
    note.style.gridColumn = "1 / -1";
    note.textContent = prediction.per_pixel
      ? "share of the image's pixels labelled each class (the last layer's maps: a score per class and pixel)"
      : `${prediction.boxes.length} found (boxes of score 0.3 or more, drawn on the prepared input); each bar: ` +
        "the best score the class reaches in any cell of the grid";
    box.append(note);
  }
  prediction.classes.forEach((name, k) => {
    const p = prediction.probabilities[k];
    const label = document.createElement("span");
    label.textContent = name;
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.setAttribute("role", "meter");
    bar.setAttribute("aria-label", prediction.per_pixel ? `share of pixels labelled ${name}` : `probability of ${name}`);
    bar.setAttribute("aria-valuenow", p.toFixed(4));
    bar.setAttribute("aria-valuemin", "0");
    bar.setAttribute("aria-valuemax", "1");
    bar.innerHTML = `<span style="width:${(100 * p).toFixed(1)}%"></span>`;
    const value = document.createElement("span");
    value.textContent = `${(100 * p).toFixed(1)}%`;
    if (k === prediction.predicted) { label.className = value.className = "best"; }
    box.append(label, bar, value);
  });
  box.dataset.predicted = prediction.classes[prediction.predicted];
}

// ----- start ---------------------------------------------------------------------------------
$("clear").addEventListener("click", () => clearPad());
$("model").addEventListener("change", () => chooseModel($("model").value));
$("sample-next").addEventListener("click", () => showSample());
for (const axis of ["x", "y"]) {
  $(`shift-${axis}`).addEventListener("input", () => {
    $(`shift-${axis}-value`).textContent = $(`shift-${axis}`).value;
    requestUpdate();
  });
}

async function start() {
  clearPad(false);
  showEmpty();
  try {
    const listing = await loadModels();
    for (const m of listing.models.filter((m) => m.kind === "zoo")) {
      const name = m.id.slice(4);  // the classic, LeNet-5, is the one chosen at first
      $("train-model").add(new Option(name, name, name === "lenet5", name === "lenet5"));
    }
    const config = await api("/api/config");
    for (const name of config.datasets) $("datasets").append(new Option(name));
    await chooseModel($("model").value);
    const status = await api("/api/train");
    showTraining(status);
    if (["running", "paused", "pausing", "stopping", "writing the report"].includes(status.state)) pollTraining();
  } catch (error) { say(error.message, true); }
}
start();
