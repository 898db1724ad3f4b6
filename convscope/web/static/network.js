// convscope explorer: the network overview, a column per layer. No CNN maths here: every number shown comes from the
// server's library calls (convscope.trace, convscope.arithmetic).
"use strict";

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
  Object.assign(canvas.dataset, flat ? {units: h} : {rows: h, cols: w});
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

function outlineCell(canvas, cell) {  // the clicked cell, outlined inside its map
  const flat = cell.y === undefined;
  const [h, w] = [canvas.height, canvas.width];
  const rows = flat ? Number(canvas.dataset.units) : Number(canvas.dataset.rows);
  const cols = flat ? 1 : Number(canvas.dataset.cols);
  const y = flat ? cell.channel : cell.y, x = flat ? 0 : cell.x;
  const g = canvas.getContext("2d");
  g.strokeStyle = "#f0a500";
  g.lineWidth = Math.max(1, Math.round(w / cols / 4));
  g.strokeRect(x * w / cols, y * h / rows, w / cols, h / rows);
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
