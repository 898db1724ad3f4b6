// convscope explorer: training a model from the page, watched live. No CNN maths here: every number shown comes from the
// server's library calls (convscope.trace, convscope.arithmetic).
"use strict";

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
