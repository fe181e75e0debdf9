// attnlab's page: asks /v1/model what is served, posts the sentence to /v1/translate with attention on,
// and draws the cross-attention as a grid: one row per target piece, one column per source piece.
// Text from the server is only ever set as textContent, never parsed as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
let result = null; // the attention of the last translation: {source_tokens, target_tokens, cross, cross_layers}

function setStatus(message, isError = false) {
  $("status").textContent = message;
  $("status").classList.toggle("error", isError);
}

async function loadModel() {
  const response = await fetch("/v1/model");
  const info = await response.json();
  $("direction").textContent = `${info.source_language} → ${info.target_language}`;
  $("model-name").textContent = info.name;
  $("source").lang = info.source_language;
  $("translation").lang = info.target_language;
  $("source").maxLength = info.limits.max_chars;
  $("beam").max = info.limits.max_beam;
  $("beam").value = Math.min(info.decode.beam, info.limits.max_beam);
  for (let layer = 0; layer < info.sizes.decoder_layers; layer++) {
    $("layer").append(new Option(`layer ${layer + 1}`, String(layer)));
  }
}

async function translate(event) {
  event.preventDefault();
  const text = $("source").value.trim();
  if (!text) {
    setStatus("type a sentence first", true);
    return;
  }
  $("go").disabled = true;
  setStatus("translating…");
  try {
    const body = { texts: [text], beam: Number($("beam").value), attention: true, attention_layers: true };
    const response = await fetch("/v1/translate", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    const data = await response.json();
    if (!response.ok) throw new Error(data.error || response.statusText);
    result = data.attention[0];
    $("translation").textContent = data.translations[0];
    draw();
    setStatus(`${Math.round(data.timing_ms)} ms`);
  } catch (error) {
    setStatus(error.message, true);
  } finally {
    $("go").disabled = false;
  }
}

function currentMatrix() {
  const layer = $("layer").value;
  return layer === "mean" ? result.cross : result.cross_layers[Number(layer)];
}

function box(className, text, data = {}) {
  const el = document.createElement("div");
  el.className = className;
  el.textContent = text;
  Object.assign(el.dataset, data);
  return el;
}

function draw() {
  const grid = $("heatmap");
  grid.replaceChildren();
  if (!result || result.source_tokens.length === 0) return;
  const matrix = currentMatrix();
  const peak = Math.max(1e-9, ...matrix.flat());
  grid.style.gridTemplateColumns = `max-content repeat(${result.source_tokens.length}, 2.4rem)`;
  grid.append(box("corner", ""));
  result.source_tokens.forEach((token, s) => grid.append(box(token.length > 2 ? "src-label long" : "src-label", token, { s })));
  result.target_tokens.forEach((token, t) => {
    const label = box("tgt-label", token, { t });
    label.tabIndex = 0;
    grid.append(label);
    matrix[t].forEach((weight, s) => {
      const cell = box("cell", "", { t, s });
      cell.style.backgroundColor = `rgba(37, 99, 235, ${(weight / peak).toFixed(3)})`;
      cell.title = `${token} → ${result.source_tokens[s]}: ${weight.toFixed(3)}`;
      grid.append(cell);
    });
  });
}

function highlight(t) {
  const grid = $("heatmap");
  const row = t === null ? null : currentMatrix()[t];
  const rowPeak = row ? Math.max(...row) : 0;
  grid.querySelectorAll(".tgt-label").forEach((el) => el.classList.toggle("active", Number(el.dataset.t) === t));
  grid.querySelectorAll(".cell").forEach((el) => el.classList.toggle("active-row", Number(el.dataset.t) === t));
  grid.querySelectorAll(".src-label").forEach((el) => {
    const weight = row ? row[Number(el.dataset.s)] : 0;
    el.classList.toggle("attended", row !== null && weight >= 0.5 * rowPeak);
    el.style.backgroundColor = row ? `rgba(37, 99, 235, ${(0.6 * weight / rowPeak).toFixed(3)})` : "";
  });
}

function targetOf(event) {
  const el = event.target.closest("[data-t]");
  return el ? Number(el.dataset.t) : null;
}

function init() {
  $("form").addEventListener("submit", translate);
  $("source").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault(); // Enter translates; Shift+Enter starts a new line
      $("form").requestSubmit();
    }
  });
  $("layer").addEventListener("change", () => { if (result) draw(); });
  const grid = $("heatmap");
  grid.addEventListener("mouseover", (event) => { if (targetOf(event) !== null) highlight(targetOf(event)); });
  grid.addEventListener("focusin", (event) => { if (targetOf(event) !== null) highlight(targetOf(event)); });
  grid.addEventListener("mouseleave", () => highlight(null));
  loadModel().catch((error) => setStatus(`cannot read the model: ${error.message}`, true));
}

init();
