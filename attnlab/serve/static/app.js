// attnlab's page: asks /v1/model what is served, posts the sentence to /v1/translate with attention, n-best and
// alignment on, lists the hypotheses, draws the word links of the chosen one, and draws the cross-attention as a
// grid: one row per target piece, one column per source piece.
// Text from the server is only ever set as textContent, never parsed as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
let result = null; // the attention of the last translation: {source_tokens, target_tokens, cross, cross_layers}
let hypotheses = []; // the n-best list of the last translation: [{translation, score, log_prob, alignment, ...}]
let alignments = true; // the served engine gives word alignments
let attentionMaps = true; // the served engine gives attention maps (the heatmap)
const SVG = "http://www.w3.org/2000/svg";

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
  $("nbest").max = info.limits.max_beam;
  $("prefix").lang = info.target_language;
  alignments = info.decode.alignment !== false;
  attentionMaps = info.decode.attention_maps !== false;
  $("alignment-section").hidden = !alignments;
  $("attention-section").hidden = !attentionMaps;
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
    const beam = Number($("beam").value);
    const body = {
      texts: [text], beam, n_best: Math.max(1, Math.min(Number($("nbest").value), beam)), scores: true,
      alignment: alignments, attention: attentionMaps, attention_layers: attentionMaps,
    };
    const prefix = $("prefix").value.trim();
    if (prefix) body.prefix = prefix;
    const response = await fetch("/v1/translate", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    const data = await response.json();
    if (!response.ok) throw new Error(data.error || response.statusText);
    result = data.attention ? data.attention[0] : null;
    hypotheses = data.hypotheses ? data.hypotheses[0] : [];
    $("translation").textContent = data.translations[0];
    listHypotheses();
    drawAlignment(0);
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

const CJK = /[\u2e80-\u9fff\uf900-\ufaff]/;
function stacked(token) { // a Chinese piece of several characters: its header is stacked (style.css)
  return CJK.test(token) && token.replace("\u2581", "").length > 1;
}

function draw() {
  const grid = $("heatmap");
  grid.replaceChildren();
  if (!result || result.source_tokens.length === 0) return;
  const matrix = currentMatrix();
  const peak = Math.max(1e-9, ...matrix.flat());
  grid.style.gridTemplateColumns = `max-content repeat(${result.source_tokens.length}, max-content)`;
  grid.append(box("corner", ""));
  result.source_tokens.forEach((token, s) => grid.append(box(stacked(token) ? "src-label stacked" : "src-label", token, { s })));
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

function listHypotheses() {
  const list = $("hypotheses");
  list.replaceChildren();
  hypotheses.forEach((hyp, i) => {
    const item = document.createElement("li");
    item.dataset.i = i;
    item.tabIndex = 0;
    const words = document.createElement("span");
    words.className = "hyp-text";
    words.textContent = hyp.translation;
    const score = document.createElement("span");
    score.className = "hyp-score";
    score.textContent = `score ${hyp.score.toFixed(3)} · log P ${hyp.log_prob.toFixed(3)}`;
    item.append(words, score);
    list.append(item);
  });
}

function svgText(x, y, text, className) {
  const el = document.createElementNS(SVG, "text");
  el.setAttribute("x", x);
  el.setAttribute("y", y);
  el.setAttribute("class", className);
  el.setAttribute("text-anchor", "middle");
  el.textContent = text;
  return el;
}

// One row of words: each gets a slot as wide as its text needs (a CJK character counts double); the row is
// centred in `width`. Returns the x of each word's centre.
function wordWidths(words) {
  return words.map((word) => Math.max(48, 9 * [...word].reduce((n, ch) => n + (ch.codePointAt(0) >= 0x2e80 ? 2 : 1), 0) + 16));
}

function centres(widths, width) {
  let x = (width - widths.reduce((a, b) => a + b, 0)) / 2;
  return widths.map((w) => { x += w; return x - w / 2; });
}

function drawAlignment(i) {
  const svg = $("alignment");
  svg.replaceChildren();
  $("alignment-pairs").textContent = "";
  document.querySelectorAll("#hypotheses li").forEach((el) => el.classList.toggle("selected", Number(el.dataset.i) === i));
  const hyp = hypotheses[i];
  if (!hyp || typeof hyp.alignment !== "string" || !hyp.source_words) return;  // an empty output still shows its source words
  const srcWidths = wordWidths(hyp.source_words), tgtWidths = wordWidths(hyp.target_words);
  const sum = (xs) => xs.reduce((a, b) => a + b, 0);
  const width = Math.max(sum(srcWidths), sum(tgtWidths), 100);
  const sx = centres(srcWidths, width), tx = centres(tgtWidths, width);
  svg.setAttribute("viewBox", `0 0 ${width} 110`);
  svg.setAttribute("width", width);
  svg.setAttribute("height", 110);
  for (const pair of hyp.alignment.split(" ").filter(Boolean)) {
    const [s, t] = pair.split("-").map(Number);
    const line = document.createElementNS(SVG, "line");
    line.setAttribute("x1", sx[s]);
    line.setAttribute("y1", 26);
    line.setAttribute("x2", tx[t]);
    line.setAttribute("y2", 84);
    line.setAttribute("class", "link");
    line.dataset.s = s;
    line.dataset.t = t;
    svg.append(line);
  }
  hyp.source_words.forEach((word, s) => svg.append(svgText(sx[s], 18, word, "src-word")));
  hyp.target_words.forEach((word, t) => svg.append(svgText(tx[t], 100, word, "tgt-word")));
  $("alignment-pairs").textContent = hyp.alignment;
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
  const choose = (event) => {
    const item = event.target.closest("#hypotheses li");
    if (item) drawAlignment(Number(item.dataset.i));
  };
  $("hypotheses").addEventListener("click", choose);
  $("hypotheses").addEventListener("keydown", (event) => { if (event.key === "Enter") choose(event); });
  const grid = $("heatmap");
  grid.addEventListener("mouseover", (event) => { if (targetOf(event) !== null) highlight(targetOf(event)); });
  grid.addEventListener("focusin", (event) => { if (targetOf(event) !== null) highlight(targetOf(event)); });
  grid.addEventListener("mouseleave", () => highlight(null));
  loadModel().catch((error) => setStatus(`cannot read the model: ${error.message}`, true));
}

init();
