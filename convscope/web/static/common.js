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
