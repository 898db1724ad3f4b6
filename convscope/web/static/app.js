// convscope explorer: the page draws what the server computed. No CNN maths here: every
// number shown comes from the server's library calls (convscope.trace, convscope.arithmetic).
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  model: null, network: null, input: null, update: null, inFlight: false, dirty: false,
  chosen: null, view: "filters", samples: null, sampleN: {}, trainPictures: -1,
};

// ----- talking to the server ---------------------------------------------------------
async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)};
  const response = await fetch(path, options);
  const answer = await response.json().catch(() => ({error: `${response.status} ${response.statusText}`}));
  if (!response.ok) throw new Error(answer.error || `${response.status} ${response.statusText}`);
  return answer;
}

function say(text, isError = false) {
  const status = $("status");
  status.textContent = text;
  status.className = isError ? "error" : "note";
}

function inputRequest(extra = {}) {
  const shift = [Number($("shift-y").value), Number($("shift-x").value)];
  return Object.assign({model: state.model, shift}, state.input, extra);
}

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
  state.samples.classes.forEach((name, k) => select.add(new Option(`${name} (${state.samples.counts[k]})`, k)));
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
  if (update) { state.input = null; showEmpty(); }
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
    say(error.message, !error.message.includes("blank"));  // a first dot is not yet a digit
  } finally {
    state.inFlight = false;
  }
  if (state.dirty) requestUpdate();
  else { if (state.chosen) showCell(state.chosen); if (state.view === "saliency" || state.view === "pooling") showInside(); }
}

function showEmpty() {
  $("prepared").removeAttribute("src");
  $("notes").innerHTML = "";
  $("prediction").innerHTML = "<span class='note'>draw something</span>";
  $("field-box").hidden = true;
}

function showUpdate(answer) {
  $("prepared").src = answer.input.picture;
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
  prediction.classes.forEach((name, k) => {
    const p = prediction.probabilities[k];
    const label = document.createElement("span");
    label.textContent = name;
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.setAttribute("role", "meter");
    bar.setAttribute("aria-label", `probability of ${name}`);
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

// ----- the network overview ---------------------------------------------------------------
function mapScale(shape, target = 56) {  // thumbnails of about `target` pixels a side
  const side = Math.max(shape[1], shape[2]);
  return Math.max(1, Math.min(6, Math.round(target / side)));
}

const THUMB = 40;  // the shown width of a feature map in the overview, in CSS pixels

function buildNetwork(net) {
  const box = $("network");
  box.innerHTML = "";
  net.layers.forEach((layer, i) => {
    if (i > 0) {
      const arrow = document.createElement("span");
      arrow.className = "arrow";
      arrow.textContent = layer.input && layer.input !== net.layers[i - 1].name ? `← ${layer.input}` : "→";
      box.append(arrow);
    }
    const column = document.createElement("div");
    column.className = "layer";
    column.dataset.layer = layer.name;
    const parts = [layer.window ? `k${layer.window.kernel.join("x")} s${layer.window.stride.join("x")}` : "",
      layer.params ? `${layer.params.toLocaleString()} params` : ""].filter(Boolean).join(", ");
    column.innerHTML = `<h4>${escapeHtml(layer.name)} ${escapeHtml(layer.kind)}</h4>` +
      `<div class="shape">${layer.shape.join("x")}${parts ? "<br>" + parts : ""}</div>` +
      `<div class="legend"><i></i><span class="range"></span></div><div class="maps"></div>`;
    column.title = layer.arithmetic || `${layer.kind}: ${layer.input_shape.join("x")} -> ${layer.shape.join("x")}`;
    const maps = column.querySelector(".maps");
    const channels = layer.shape.length === 3 ? layer.shape[0] : 1;
    for (let c = 0; c < channels; c++) maps.append(mapCanvas(layer, c));
    maps.style.gridTemplateColumns = channels > 8 ? "auto auto" : "auto";
    box.append(column);
  });
}

function mapCanvas(layer, channel) {
  const canvas = document.createElement("canvas");
  const flat = layer.shape.length !== 3;
  const [h, w] = flat ? [layer.shape[0], 1] : [layer.shape[1], layer.shape[2]];
  const scale = flat ? Math.max(2, Math.min(12, Math.floor(320 / h))) : mapScale(layer.shape);
  canvas.width = w * scale;
  canvas.height = h * scale;
  if (flat) canvas.width = 14;
  else canvas.style.setProperty("--side", `${Math.round(THUMB * w / Math.max(h, w))}px`);
  canvas.tabIndex = channel === 0 ? 0 : -1;  // one Tab stop per layer: the map focused last
  canvas.addEventListener("focus", () => {
    for (const other of canvas.parentElement.children) other.tabIndex = other === canvas ? 0 : -1;
  });
  canvas.dataset.layer = layer.name;
  canvas.dataset.channel = channel;
  canvas.setAttribute("role", "button");
  canvas.setAttribute("aria-label", flat ? `layer ${layer.name}: ${h} units` : `layer ${layer.name} map ${channel}`);
  canvas.addEventListener("click", (event) => {
    const box = canvas.getBoundingClientRect();
    const y = Math.min(h - 1, Math.floor((event.clientY - box.top) / box.height * h));
    const x = Math.min(w - 1, Math.floor((event.clientX - box.left) / box.width * w));
    chooseCell(flat ? {layer: layer.name, channel: y} : {layer: layer.name, channel, y, x});
  });
  canvas.addEventListener("keydown", (event) => keyCell(event, layer, channel, flat, h, w));
  return canvas;
}

function keyCell(event, layer, channel, flat, h, w) {
  const moves = {ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1]};
  const c = state.chosen && state.chosen.layer === layer.name && (flat || state.chosen.channel === channel)
    ? state.chosen : (flat ? {layer: layer.name, channel: 0} : {layer: layer.name, channel, y: 0, x: 0});
  if (event.key === "Enter" || event.key === " ") { chooseCell(c); event.preventDefault(); return; }
  const other = {PageUp: -1, PageDown: 1}[event.key];  // the previous / next map of the layer
  if (other && !flat) {
    event.preventDefault();
    const next = event.target.parentElement.children[clamp(channel + other, 0, layer.shape[0] - 1)];
    next.focus();
    chooseCell({layer: layer.name, channel: Number(next.dataset.channel), y: c.y, x: c.x});
    return;
  }
  const move = moves[event.key];
  if (!move) return;
  event.preventDefault();
  if (flat) chooseCell({layer: layer.name, channel: clamp(c.channel + move[0], 0, h - 1)});
  else chooseCell({layer: layer.name, channel, y: clamp(c.y + move[0], 0, h - 1), x: clamp(c.x + move[1], 0, w - 1)});
}

const clamp = (v, lo, hi) => Math.max(lo, Math.min(hi, v));

function drawLayer(layer) {
  const column = document.querySelector(`.layer[data-layer="${CSS.escape(layer.name)}"]`);
  if (!column) return;
  column.querySelector(".range").textContent = `${fmt(layer.lo)} … ${fmt(layer.hi)}`;
  const bytes = Uint8Array.from(atob(layer.data), (ch) => ch.charCodeAt(0));
  const canvases = column.querySelectorAll("canvas");
  const flat = layer.shape.length !== 3;
  const [h, w] = flat ? [layer.shape[0], 1] : [layer.shape[1], layer.shape[2]];
  canvases.forEach((canvas, c) => {
    const image = new ImageData(w, h);
    for (let i = 0; i < h * w; i++) {
      const v = bytes[c * h * w + i];
      image.data.set([v, v, v, 255], 4 * i);
    }
    paint(canvas, image);
  });
  if (state.chosen && state.chosen.layer === layer.name) markChosen();
}

function paint(canvas, image) {
  const small = document.createElement("canvas");
  small.width = image.width;
  small.height = image.height;
  small.getContext("2d").putImageData(image, 0, 0);
  const g = canvas.getContext("2d");
  g.imageSmoothingEnabled = false;
  g.drawImage(small, 0, 0, canvas.width, canvas.height);
}

// ----- one cell's arithmetic --------------------------------------------------------------
function chooseCell(cell) {
  state.chosen = cell;
  markChosen();
  showCell(cell);
  if (state.view === "pooling") showInside();
}

function markChosen() {
  document.querySelectorAll(".maps canvas.chosen").forEach((c) => c.classList.remove("chosen"));
  const c = state.chosen;
  const column = document.querySelector(`.layer[data-layer="${CSS.escape(c.layer)}"]`);
  if (!column) return;
  const canvases = column.querySelectorAll("canvas");
  const canvas = canvases.length === 1 ? canvases[0] : canvases[c.channel];
  if (canvas) canvas.classList.add("chosen");
}

async function showCell(cell) {
  if (!state.input) { $("cell").innerHTML = "<p class='note'>Draw or choose an input first.</p>"; return; }
  const asked = (state.cellAsked = (state.cellAsked || 0) + 1);  // a quicker later click wins
  const model = state.model;
  try {
    const answer = await api("/api/cell", inputRequest(cell));
    if (asked !== state.cellAsked || model !== state.model) return;
    $("cell").innerHTML = cellHtml(answer);
    showField(answer.field);
  } catch (error) {
    if (asked === state.cellAsked && model === state.model) $("cell").innerHTML = `<p class="error">${escapeHtml(error.message)}</p>`;
  }
}

function showField(field) {
  const box = $("field-box");
  const shape = state.network.input_shape;
  if (!field) { box.hidden = true; return; }
  const sy = 168 / shape[1], sx = 168 / shape[2];
  Object.assign(box.style, {top: `${field.top * sy}px`, left: `${field.left * sx}px`,
    height: `${(field.bottom - field.top + 1) * sy}px`, width: `${(field.right - field.left + 1) * sx}px`});
  box.hidden = false;
  box.title = `receptive field: input rows ${field.top}-${field.bottom}, columns ${field.left}-${field.right}`;
}

const fmt = (v) => v === null || v === undefined ? "–" : (Math.abs(v) >= 1000 || (Math.abs(v) < 0.001 && v !== 0)
  ? v.toExponential(2) : Number(v).toFixed(Math.abs(v) >= 100 ? 1 : 3));

function grid(values, caption, padMask, highlight) {
  let html = `<table><caption>${escapeHtml(caption)}</caption>`;
  values.forEach((row, i) => {
    html += "<tr>" + row.map((v, j) => {
      const cls = padMask && padMask[i][j] ? "pad" : (highlight && highlight[0] === i && highlight[1] === j ? "win" : "");
      return `<td class="${cls}">${v === null ? "pad" : fmt(v)}</td>`;
    }).join("") + "</tr>";
  });
  return html + "</table>";
}

function cellHtml(a) {
  const where = a.cell.length === 3 ? `channel ${a.cell[0]}, row ${a.cell[1]}, column ${a.cell[2]}` : `unit ${a.cell[0]}`;
  let html = `<p data-cell="${a.cell.join(",")}"><b>Layer ${escapeHtml(a.layer)}</b> (${escapeHtml(a.kind)}), ${where}: ` +
    `value <b data-value="${a.value}">${fmt(a.value)}</b></p>`;
  html += `<p>${escapeHtml(a.text || "")}</p>`;
  html += (ARITHMETIC[a.kind] || (() => ""))(a);
  if (a.then) html += `<p class="eq" data-then="${a.then.value}">then ${escapeHtml(a.then.function)} (layer ${escapeHtml(a.then.layer)}): <b>${fmt(a.then.value)}</b></p>`;
  if (a.softmax) html += softmaxHtml(a.softmax, a.classes);
  return html;
}

const ARITHMETIC = {
  conv(a) {
    let html = "<div class='grids'>";
    a.channels.forEach((c, k) => {
      html += `<div>${grid(a.inputs[k], `input channel ${c} (window)`, a.padding && a.padding[k])}` +
        `${grid(a.weights[k], `filter, channel ${c}`)}${grid(a.products[k], "products")}</div>`;
    });
    return html + `</div><p class="eq" data-sum="${a.sum}" data-bias="${a.bias}">sum of the products = ${fmt(a.sum)}` +
      `<br>+ bias ${fmt(a.bias)}<br>= <b>${fmt(a.sum + a.bias)}</b></p>`;
  },
  pool(a) {
    const formula = {max: "the largest value of the window", avg: `${fmt(a.sum)} / ${a.count} counted values`,
      lp: `(${fmt(a.sum)})^(1/${a.norm_type}), the root of the sum of |x|^${a.norm_type}`,
      adaptive_avg: `${fmt(a.sum)} / ${a.count} values`}[a.op];
    return grid(a.values, `the window (rows ${a.rows[0]}-${a.rows[a.rows.length - 1]}, columns ` +
      `${a.cols[0]}-${a.cols[a.cols.length - 1]} of its input)`, a.padding, a.winner) +
      `<p class="eq">${escapeHtml(formula)} = <b>${fmt(a.result)}</b></p>`;
  },
  linear(a) {
    let html = "<table><caption>biggest weighted inputs</caption><tr><td>input</td><td>value</td><td>weight</td><td>product</td></tr>";
    for (const c of a.contributions) {
      const name = c.source ? `${c.index} (c${c.source[0]}, y${c.source[1]}, x${c.source[2]})` : c.index;
      html += `<tr><td>${name}</td><td>${fmt(c.input)}</td><td>${fmt(c.weight)}</td><td>${fmt(c.product)}</td></tr>`;
    }
    return html + `</table><p class="eq" data-sum="${a.sum}" data-bias="${a.bias}">shown ${fmt(a.sum - a.rest)} + the other inputs ${fmt(a.rest)} ` +
      `= sum ${fmt(a.sum)}<br>+ bias ${fmt(a.bias)}<br>= <b>${fmt(a.sum + a.bias)}</b></p>`;
  },
  activation(a) { return `<p class="eq">${escapeHtml(a.function)}: ${escapeHtml(a.formula)} with x = ${fmt(a.input)} → <b>${fmt(a.value)}</b></p>`; },
  softmax(a) { return softmaxHtml(a, null); },
  batchnorm(a) {
    return `<p class="eq">(${fmt(a.x)} − ${fmt(a.mean)}) / √(${fmt(a.var)} + ${a.eps}) × ${fmt(a.gamma)} + ${fmt(a.beta)} = <b>${fmt(a.value)}</b></p>`;
  },
};

function softmaxHtml(s, classes) {
  const names = classes || s.logits.map((_, k) => String(k));
  let html = "<table><caption>logits to probabilities: softmax</caption><tr><td>class</td><td>logit</td><td>− max</td><td>exp</td><td>probability</td></tr>";
  s.logits.forEach((z, k) => {
    html += `<tr><td>${escapeHtml(names[k])}</td><td>${fmt(z)}</td><td>${fmt(s.shifted[k])}</td><td>${fmt(s.exps[k])}</td><td>${fmt(s.probabilities[k])}</td></tr>`;
  });
  return html + `</table><p class="eq">probability = exp(logit − max) / ${fmt(s.sum)} (the sum of the exps)</p>`;
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (ch) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[ch]));
}

// ----- look inside --------------------------------------------------------------------------
document.querySelectorAll("[data-view]").forEach((button) => button.addEventListener("click", () => {
  document.querySelectorAll("[data-view]").forEach((b) => b.setAttribute("aria-selected", String(b === button)));
  state.view = button.dataset.view;
  $("explain-depth-row").hidden = state.view !== "explain";
  $("pooling-note").hidden = state.view !== "pooling";
  showInside();
}));
$("explain-depth").addEventListener("change", () => showInside());

function pictures(answer) {
  return answer.pictures.map((p) => `<img src="${p.src}" alt="${escapeHtml(p.name)}">`).join("");
}

async function showInside() {
  const asked = (state.insideAsked = (state.insideAsked || 0) + 1);  // only the latest answer is shown
  const box = {set innerHTML(html) { if (asked === state.insideAsked) $("inside").innerHTML = html; }};
  const model = encodeURIComponent(state.model);
  try {
    if (state.view === "filters") box.innerHTML = pictures(await api(`/api/filters?model=${model}`));
    else if (state.view === "summary") box.innerHTML = `<pre>${escapeHtml(state.network.summary)}</pre>`;
    else if (state.view === "explain") {
      const answer = await api(`/api/explain?model=${model}&depth=${$("explain-depth").value}`);
      box.innerHTML = `<div class="markdown">${markdown(answer.markdown)}</div>`;
    } else if (!state.input) box.innerHTML = "<p class='note'>Draw or choose an input first.</p>";
    else if (state.view === "saliency") box.innerHTML = pictures(await api("/api/saliency", inputRequest()));
    else {
      const chosen = state.chosen && state.network.layers.find((l) => l.name === state.chosen.layer && l.shape.length === 3);
      const extra = chosen ? {layer: state.chosen.layer, channel: state.chosen.channel} : {};
      box.innerHTML = pictures(await api("/api/pooling", inputRequest(extra)));
    }
  } catch (error) {
    box.innerHTML = `<p class="error">${escapeHtml(error.message)}</p>`;
  }
}

function markdown(text) {  // headings, paragraphs, lists and code: the subset explain writes
  const inline = (s) => escapeHtml(s).replace(/`([^`]+)`/g, "<code>$1</code>").replace(/\*\*([^*]+)\*\*/g, "<b>$1</b>");
  return text.split(/\n\n+/).map((block) => {
    const heading = block.match(/^(#{1,4}) (.*)/);
    if (heading) return `<h${heading[1].length + 2}>${inline(heading[2])}</h${heading[1].length + 2}>`;
    if (block.startsWith("```")) return `<pre>${escapeHtml(block.replace(/^```\w*\n?|```$/g, ""))}</pre>`;
    if (/^[-*] /.test(block)) return "<ul>" + block.split(/\n(?=[-*] )/).map((li) => `<li>${inline(li.slice(2))}</li>`).join("") + "</ul>";
    if (/^ {4}/.test(block)) return `<pre>${escapeHtml(block)}</pre>`;
    return `<p>${inline(block)}</p>`;
  }).join("");
}

// ----- training ------------------------------------------------------------------------------
$("train-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = {model: $("train-model").value, data: $("train-data").value, augment: $("train-augment").checked};
  for (const [key, id, kind] of [["epochs", "train-epochs", parseInt], ["batch_size", "train-batch", parseInt],
    ["lr", "train-lr", parseFloat]]) if ($(id).value !== "") body[key] = kind($(id).value);
  if ($("train-optimizer").value) body.optimizer = $("train-optimizer").value;
  await startTraining(body);
});

async function startTraining(body) {
  try {
    $("train-status").textContent = "setting the run up ...";
    showTraining(await api("/api/train", body));
    pollTraining();
  } catch (error) {
    $("train-status").innerHTML = `<span class="error">${escapeHtml(error.message)}</span>`;
  }
}

for (const action of ["pause", "resume", "stop"]) {
  $(`train-${action}`).addEventListener("click", async () => {
    try { showTraining(await api(`/api/train/${action}`, {})); } catch (error) {
      $("train-status").innerHTML = `<span class="error">${escapeHtml(error.message)}</span>`;
    }
  });
}

function showResumable(runs) {
  const box = $("resumable");
  box.innerHTML = "";
  for (const run of runs.filter((r) => r.resumable)) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = `Resume ${run.label}`;
    button.addEventListener("click", () => startTraining({resume: run.id}));
    box.append(button);
  }
  for (const run of runs.filter((r) => r.problem)) {
    const p = document.createElement("p");
    p.className = "note";
    p.textContent = `${run.name}: ${run.problem}`;
    box.append(p);
  }
}

let polling = null;
function pollTraining() {
  if (polling) return;
  polling = setInterval(async () => {
    try {
      const status = await api(`/api/train?since=${state.trainPictures}`);
      showTraining(status);
      if (!["running", "paused", "pausing", "stopping", "writing the report"].includes(status.state)) {
        clearInterval(polling);
        polling = null;
        await loadModels(state.model);
      }
    } catch (error) { $("train-status").textContent = error.message; }
  }, 700);
}

function showTraining(s) {
  const going = ["running", "paused", "pausing", "stopping", "writing the report"].includes(s.state);
  $("train-start").disabled = going;
  $("train-pause").disabled = s.state !== "running";
  $("train-resume").disabled = !["paused", "pausing"].includes(s.state);
  $("train-stop").disabled = !["running", "pausing", "paused"].includes(s.state);  // not once it is writing the report
  if (s.state === "idle") { $("train-status").textContent = "no training run yet"; return; }
  const last = s.history.length ? s.history[s.history.length - 1] : null;
  $("train-status").textContent = `${s.state}: ${s.model} on ${s.data} → ${s.run}, epoch ${Math.min(s.epoch + 1, s.epochs)} of ${s.epochs}` +
    `, batch ${s.batch} of ${s.batches}` + (last ? `; last epoch: validation accuracy ${(100 * last.val_acc).toFixed(2)}%` : "") +
    (s.error ? ` — ${s.error}` : "");
  $("train-status").dataset.state = s.state;
  drawCurve(s);
  if (s.filters !== undefined) {
    state.trainPictures = s.pictures;
    if (s.filters) { $("train-filters").src = s.filters; $("train-filters").hidden = false; }
    drawTrainMaps(s.maps || []);
  }
}

function drawTrainMaps(maps) {
  const box = $("train-maps");
  box.innerHTML = "";
  for (const layer of maps) {
    const [c, h, w] = layer.shape;
    const bytes = Uint8Array.from(atob(layer.data), (ch) => ch.charCodeAt(0));
    const row = document.createElement("div");
    row.title = `layer ${layer.name}`;
    for (let k = 0; k < Math.min(c, 8); k++) {
      const canvas = document.createElement("canvas");
      canvas.width = w * mapScale(layer.shape);
      canvas.height = h * mapScale(layer.shape);
      const image = new ImageData(w, h);
      for (let i = 0; i < h * w; i++) { const v = bytes[k * h * w + i]; image.data.set([v, v, v, 255], 4 * i); }
      paint(canvas, image);
      row.append(canvas);
    }
    box.append(row);
  }
}

function drawCurve(s) {
  const canvas = $("curve");
  const g = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height, L = 36, R = 30, T = 8, B = 22;
  g.clearRect(0, 0, W, H);
  const steps = s.epochs * s.batches;
  const losses = s.curve.map((p) => p[1]).concat(s.history.map((r) => r.val_loss)).filter(Number.isFinite);
  const top = losses.length ? Math.max(...losses) * 1.05 : 1;
  const x = (step) => L + (W - L - R) * step / Math.max(1, steps);
  const y = (loss) => T + (H - T - B) * (1 - loss / top);
  const ya = (acc) => T + (H - T - B) * (1 - acc);
  g.strokeStyle = "#999"; g.strokeRect(L, T, W - L - R, H - T - B);
  g.fillStyle = "#333"; g.font = "10px sans-serif";
  g.fillText(top.toFixed(2), 2, T + 8); g.fillText("0", 2, H - B); g.fillText("loss", 2, H / 2);
  g.fillText("100%", W - R + 2, T + 8); g.fillText("acc", W - R + 2, H / 2);
  g.fillText(`step (${steps} = ${s.epochs} epochs)`, L, H - 6);
  g.strokeStyle = "#aaa"; g.beginPath();
  s.curve.forEach((p, i) => (i ? g.lineTo : g.moveTo).call(g, x(p[0]), y(p[1])));
  g.stroke();
  const epochX = (r) => x(r.epoch * s.batches);
  g.strokeStyle = "#2b59c3"; g.fillStyle = "#2b59c3"; g.beginPath();
  s.history.forEach((r, i) => (i ? g.lineTo : g.moveTo).call(g, epochX(r), y(r.val_loss)));
  g.stroke();
  s.history.forEach((r) => g.fillRect(epochX(r) - 2, y(r.val_loss) - 2, 4, 4));
  g.strokeStyle = "#2a9d3a"; g.fillStyle = "#2a9d3a"; g.beginPath();
  s.history.forEach((r, i) => (i ? g.lineTo : g.moveTo).call(g, epochX(r), ya(r.val_acc)));
  g.stroke();
  s.history.forEach((r) => g.fillRect(epochX(r) - 2, ya(r.val_acc) - 2, 4, 4));
  canvas.dataset.points = String(s.curve.length);
  canvas.dataset.epochs = String(s.history.length);
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
    for (const m of listing.models.filter((m) => m.kind === "zoo")) $("train-model").add(new Option(m.id.slice(4), m.id.slice(4)));
    const config = await api("/api/config");
    for (const name of config.datasets) $("datasets").append(new Option(name));
    await chooseModel($("model").value);
    const status = await api("/api/train");
    showTraining(status);
    if (["running", "paused", "pausing", "stopping", "writing the report"].includes(status.state)) pollTraining();
  } catch (error) { say(error.message, true); }
}
start();
