// convscope explorer: the arithmetic of one clicked cell. No CNN maths here: every number shown comes from the
// server's library calls (convscope.trace, convscope.arithmetic).
"use strict";

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
  if (canvas) { canvas.classList.add("chosen"); outlineCell(canvas, c); }
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
  let html = `<p data-cell="${a.cell.join(",")}"><b>Layer ${escapeHtml(a.layer)}</b> (${escapeHtml(a.module)}), ${where}: ` +
    `value <b data-value="${a.value}">${fmt(a.value)}</b></p>`;
  html += `<p>${escapeHtml(a.text || "")}</p>`;
  if (a.input_layer === "input" && state.network) html += normalisedNote(state.network);
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
  transposed(a) {  // a transposed convolution: the inputs whose filter taps land on this cell
    let html = "<table><caption>inputs landing here, times the filter tap they land with</caption>" +
      "<tr><td>input (c, y, x)</td><td>value</td><td>tap (ky, kx)</td><td>weight</td><td>product</td></tr>";
    for (const t of a.terms) {
      html += `<tr><td>(${t.source.join(", ")})</td><td>${fmt(t.input)}</td><td>(${t.tap.join(", ")})</td>` +
        `<td>${fmt(t.weight)}</td><td>${fmt(t.product)}</td></tr>`;
    }
    const others = a.terms_count - a.terms.length;
    return html + `</table><p class="eq" data-sum="${a.sum}" data-bias="${a.bias}">shown ${fmt(a.sum - a.rest)}` +
      (others ? ` + the other ${others} ${fmt(a.rest)}` : "") + ` = sum ${fmt(a.sum)}<br>+ bias ${fmt(a.bias)}<br>= <b>${fmt(a.sum + a.bias)}</b></p>`;
  },
  upsample(a) {  // nearest: one value copied; bilinear: up to 4 values blended
    let html = `<table><caption>${escapeHtml(a.mode)}: the input values read</caption>` +
      "<tr><td>input (c, y, x)</td><td>value</td><td>weight</td><td>product</td></tr>";
    for (const t of a.terms) {
      html += `<tr><td>(${t.source.join(", ")})</td><td>${fmt(t.input)}</td><td>${fmt(t.weight)}</td><td>${fmt(t.product)}</td></tr>`;
    }
    return html + `</table><p class="eq" data-sum="${a.sum}">sum = <b>${fmt(a.sum)}</b></p>`;
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

function normalisedNote(net) {  // why the image's numbers are not 0..255
  const per = net.mean.map((m, c) => `mean ${fmt(m)}, std ${fmt(net.std[c])}`).join("; ");
  const paper = net.mean.map((m, c) => fmt(-m / net.std[c])).join(", ");
  return `<p class="note">The input's numbers are its pixels as the network receives them, normalised as in ` +
    `training: (pixel/255 − mean) / std, with ${per}. So black is ${paper} and the brightest ink about ` +
    `${net.mean.map((m, c) => fmt((1 - m) / net.std[c])).join(", ")}.</p>`;
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (ch) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[ch]));
}
