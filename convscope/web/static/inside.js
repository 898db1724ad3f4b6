// convscope explorer: the look-inside views (filters, saliency, pooling, summary, explain). No CNN maths here: every number shown comes from the
// server's library calls (convscope.trace, convscope.arithmetic).
"use strict";

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

function markdown(text) {  // headings, paragraphs, lists and fenced code: the subset explain writes
  const inline = (s) => escapeHtml(s).replace(/`([^`]+)`/g, "<code>$1</code>").replace(/\*\*([^*]+)\*\*/g, "<b>$1</b>");
  const out = [];
  let para = [], list = null, code = null;
  const flush = () => {
    if (para.length) out.push(`<p>${inline(para.join(" "))}</p>`);
    if (list) out.push(`<ul>${list.map((li) => `<li>${inline(li)}</li>`).join("")}</ul>`);
    para = [];
    list = null;
  };
  for (const line of text.split("\n")) {
    if (code !== null) {  // inside a fence: kept as it is, to the closing fence
      if (line.startsWith("```")) { out.push(`<pre>${escapeHtml(code.join("\n"))}</pre>`); code = null; } else code.push(line);
      continue;
    }
    const heading = line.match(/^(#{1,4}) (.*)/);
    if (line.startsWith("```")) { flush(); code = []; }
    else if (heading) { flush(); out.push(`<h${heading[1].length + 2}>${inline(heading[2])}</h${heading[1].length + 2}>`); }
    else if (!line.trim()) flush();
    else if (/^[-*] /.test(line)) { if (para.length) flush(); (list = list || []).push(line.slice(2)); }
    else if (list) list[list.length - 1] += " " + line.trim();  // a list item's next line
    else para.push(line);
  }
  flush();
  if (code !== null) out.push(`<pre>${escapeHtml(code.join("\n"))}</pre>`);
  return out.join("");
}
