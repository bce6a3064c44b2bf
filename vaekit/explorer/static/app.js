// vaekit explorer: the page over one run. No framework, no network beyond this server.
// State lives in the URL's hash (z, a, b, steps, method, seed, n, cond), so a view can be shared or reloaded.
"use strict";

const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
                 "#9c755f", "#bab0ac", "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#17becf"];
const $ = (id) => document.getElementById(id);
let info = null;
let z = [];
let bounds = null;
let decodeCount = 0; // decodes answered, for tests and curious users: document.body.dataset.decodes

async function api(path, body) {
  const res = await fetch(path, body === undefined ? {} : {
    method: "POST", headers: {"content-type": "application/json"}, body: JSON.stringify(body)});
  const doc = await res.json();
  if (!res.ok) throw new Error(doc.error || res.statusText);
  return doc;
}

function status(text) { $("status").textContent = text || ""; }

// -- rendering items: an image, a sentence or a table row -----------------------------------------
function renderItem(item, cls) {
  if (item.image !== undefined) {
    const img = document.createElement("img");
    img.className = "pix " + (cls || "");
    img.src = item.image;
    img.alt = "decoded image";
    return img;
  }
  if (item.text !== undefined) {
    const p = document.createElement("div");
    p.className = "sentence";
    p.textContent = item.text;
    return p;
  }
  const table = document.createElement("table"); // one row: a column per line
  table.className = "rows record";
  for (const c of info.columns) {
    const tr = table.insertRow();
    const th = document.createElement("th");
    th.textContent = c;
    tr.appendChild(th);
    tr.insertCell().textContent = cell(item.row[c]);
  }
  return table;
}

function cell(v) { return v === null || v === undefined ? "" : String(v); }

// rows as a table, a row per line; first: each row's caption (a string or a DOM node) in a first column
function rowsTable(rows, first) {
  const table = document.createElement("table");
  table.className = "rows";
  const head = table.insertRow();
  const cols = info.columns;
  for (const c of (first ? ["", ...cols] : cols)) {
    const th = document.createElement("th");
    th.textContent = c;
    head.appendChild(th);
  }
  rows.forEach((r, i) => {
    const tr = table.insertRow();
    if (first) tr.insertCell().append(first[i]);
    for (const c of cols) tr.insertCell().textContent = cell(r[c]);
  });
  return table;
}

function renderList(container, items, captions) {
  container.replaceChildren();
  if (info.kind === "table") {
    container.appendChild(rowsTable(items.map((it) => it.row), captions));
    return;
  }
  items.forEach((item, i) => {
    const card = document.createElement("div");
    card.className = "card";
    if (info.kind === "text") card.style.width = "100%";
    card.appendChild(renderItem(item));
    if (captions) {
      const cap = document.createElement("span");
      cap.textContent = captions[i];
      card.appendChild(cap);
    }
    container.appendChild(card);
  });
}

function showDecoded(item) {
  $("decoded").replaceChildren(renderItem(item));
  if (item.parts) { // a scene's objects, each decoded alone
    const parts = document.createElement("div");
    parts.className = "strip parts";
    for (const src of item.parts) parts.appendChild(renderItem({image: src}));
    $("decoded").appendChild(parts);
  }
  decodeCount += 1;
  document.body.dataset.decodes = String(decodeCount);
}

// -- the URL hash ---------------------------------------------------------------------------------
function readHash() {
  return new URLSearchParams(location.hash.slice(1));
}

function writeHash() {
  const p = new URLSearchParams();
  p.set("z", z.join(","));
  for (const id of ["a", "b", "steps", "method", "seed", "n"]) p.set(id, $(id).value);
  if (info.kind === "table" && $("cond-column").value) p.set("cond", $("cond-column").value + "=" + $("cond-value").value);
  history.replaceState(null, "", "#" + p.toString());
}

// -- decoding: at most one request in flight; moves made meanwhile collapse into the latest ---------
function latestOnly(fn) {
  let busy = false;
  let pending = null;
  return (arg) => {
    pending = arg;
    if (busy) return;
    busy = true;
    (async () => {
      while (pending !== null) {
        const a = pending;
        pending = null;
        try { await fn(a); } catch (e) { status(e.message); }
      }
      busy = false;
    })();
  };
}

const decode = latestOnly(async (code) => {
  const doc = await api("/api/decode", {z: code});
  showDecoded(doc);
  status("");
});

// the code shown: rounded to 4 decimals, so the URL holds exactly the code that was decoded
function setCode(code, skipDecode) {
  z = code.map((v) => Math.round(v * 1e4) / 1e4);
  for (const d of info.sliders) {
    const s = $("slider-" + d);
    s.value = z[d];
    $("value-" + d).textContent = z[d].toFixed(2);
  }
  $("z-summary").textContent = "z = [" + z.slice(0, 6).map((v) => v.toFixed(2)).join(", ") + (z.length > 6 ? ", …]" : "]");
  drawMap();
  writeHash();
  if (!skipDecode) decode(z.slice());
}

// -- the map --------------------------------------------------------------------------------------
function project(code) {
  if (info.dim === 2) return code;
  if (!info.projection) return null;
  const {mean, components} = info.projection;
  return components.map((row) => row.reduce((s, w, i) => s + w * (code[i] - mean[i]), 0));
}

function toCanvas(u, v, canvas) {
  const [x0, x1, y0, y1] = bounds;
  return [(u - x0) / (x1 - x0) * canvas.width, (1 - (v - y0) / (y1 - y0)) * canvas.height];
}

function drawMap() {
  const canvas = $("map");
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  info.points.forEach(([u, v], i) => {
    const [x, y] = toCanvas(u, v, canvas);
    ctx.fillStyle = PALETTE[info.labels[i] % PALETTE.length];
    ctx.globalAlpha = 0.7;
    ctx.fillRect(x - 1.5, y - 1.5, 3, 3);
  });
  ctx.globalAlpha = 1;
  const here = z.length ? project(z) : null;
  if (here) {
    const [x, y] = toCanvas(here[0], here[1], canvas);
    ctx.strokeStyle = "#000";
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.arc(x, y, 7, 0, 2 * Math.PI);
    ctx.stroke();
  }
}

async function clickMap(ev) {
  const canvas = $("map");
  const rect = canvas.getBoundingClientRect();
  const [x0, x1, y0, y1] = bounds;
  const u = x0 + (ev.clientX - rect.left) / rect.width * (x1 - x0);
  const v = y0 + (1 - (ev.clientY - rect.top) / rect.height) * (y1 - y0);
  try {
    const doc = await api("/api/point", {u, v, k: 8});
    setCode(doc.z, true);
    showDecoded(doc);
    showNeighbours(doc.neighbours);
    status("");
  } catch (e) { status(e.message); }
}

// an example's caption: its index and label, with buttons that make it A or B of the interpolation
function caption(n) {
  const cap = document.createElement("span");
  cap.className = "caption";
  cap.textContent = "#" + n.index + (info.kind === "table" ? " " : " (" + n.label + ") ");
  for (const slot of ["a", "b"]) {
    const btn = document.createElement("button");
    btn.className = "small";
    btn.type = "button";
    btn.textContent = slot.toUpperCase();
    btn.title = "use example " + n.index + " as " + slot.toUpperCase() + " of the interpolation";
    btn.onclick = () => { $(slot).value = n.index; writeHash(); };
    cap.appendChild(btn);
  }
  return cap;
}

function showNeighbours(list) {
  const box = $("neighbours");
  box.replaceChildren();
  if (info.kind === "table") {
    box.appendChild(rowsTable(list.map((n) => n.row), list.map(caption)));
    return;
  }
  for (const n of list) {
    const card = document.createElement("div");
    card.className = "card";
    if (info.kind === "text") card.style.width = "100%";
    card.append(renderItem(n), caption(n));
    box.appendChild(card);
  }
}

// -- interpolation and samples --------------------------------------------------------------------
async function interpolate() {
  try {
    const body = {a: +$("a").value, b: +$("b").value, steps: +$("steps").value, method: $("method").value};
    const doc = await api("/api/interpolate", body);
    const captions = doc.items.map((_, i) => i === 0 ? "A" : i === doc.items.length - 1 ? "B" : String(i));
    renderList($("strip"), doc.items, captions);
    writeHash();
    status("");
  } catch (e) { status(e.message); }
}

async function sample() {
  try {
    const body = {n: +$("n").value, seed: +$("seed").value};
    if (info.kind === "table" && $("cond-column").value) {
      const col = $("cond-column").value;
      body.conditions = {[col]: info.conditions[col][+$("cond-value").value]};
    }
    const doc = await api("/api/sample", body);
    renderList($("samples"), doc.items);
    writeHash();
    status("");
  } catch (e) { status(e.message); }
}

function fillConditionValues() {
  const col = $("cond-column").value;
  const sel = $("cond-value");
  sel.replaceChildren();
  (info.conditions[col] || []).forEach((v, i) => {
    const o = document.createElement("option");
    o.value = String(i);
    o.textContent = v === null ? "(missing)" : String(v);
    sel.appendChild(o);
  });
}

// -- start ----------------------------------------------------------------------------------------
function buildSliders() {
  const box = $("sliders");
  box.replaceChildren();
  for (const d of info.sliders) {
    const name = document.createElement("label");
    name.textContent = "z" + d;
    name.htmlFor = "slider-" + d;
    const s = document.createElement("input");
    s.type = "range";
    s.id = "slider-" + d;
    s.min = info.low[d];
    s.max = info.high[d];
    s.step = (info.high[d] - info.low[d]) / 200;
    s.oninput = () => {
      z[d] = +s.value;
      setCode(z);
    };
    const value = document.createElement("span");
    value.id = "value-" + d;
    value.className = "mono";
    box.append(name, s, value);
  }
  const shown = info.sliders.length;
  $("slider-caption").textContent = shown < info.dim ? `the ${shown} most varied of ${info.dim} dimensions` : `${info.dim} dimensions`;
}

async function start() {
  try {
    info = await api("/api/info");
  } catch (e) { status("cannot read the run: " + e.message); return; }
  $("run-info").textContent = `${info.run} · ${info.model} · ${info.kind} · ${info.dim}-D code`;
  $("map-caption").textContent = `— ${info.map === "pca" && info.dim > 2 ? "PCA" : info.dim === 2 ? "the code itself" : info.map.toUpperCase()} of ${info.points.length} held-out codes`;
  const us = info.points.map((p) => p[0]), vs = info.points.map((p) => p[1]);
  const pad = (lo, hi) => { const m = 0.05 * (hi - lo || 1); return [lo - m, hi + m]; };
  bounds = [...pad(Math.min(...us), Math.max(...us)), ...pad(Math.min(...vs), Math.max(...vs))];
  $("legend").replaceChildren(...info.classes.slice(0, 40).map((c, i) => {
    const s = document.createElement("span");
    s.style.setProperty("--c", PALETTE[i % PALETTE.length]);
    s.textContent = c;
    return s;
  }));
  const last = info.points.length - 1;
  for (const id of ["a", "b"]) $(id).max = last;
  buildSliders();
  if (info.kind === "table") {
    $("conditions").hidden = false;
    for (const col of Object.keys(info.conditions)) {
      const o = document.createElement("option");
      o.value = o.textContent = col;
      $("cond-column").appendChild(o);
    }
    $("cond-column").onchange = fillConditionValues;
  }
  $("map").addEventListener("click", clickMap);
  $("origin").onclick = () => setCode(info.origin);
  $("interpolate").onclick = interpolate;
  $("sample").onclick = sample;

  const h = readHash();
  for (const id of ["a", "b", "steps", "method", "seed", "n"]) if (h.has(id)) $(id).value = h.get(id);
  if (h.has("cond") && info.kind === "table") {
    const [col, value] = h.get("cond").split("=");
    if (col in info.conditions) { $("cond-column").value = col; fillConditionValues(); $("cond-value").value = value; }
  }
  let code = info.origin;
  if (h.has("z")) {
    const parsed = h.get("z").split(",").map(Number);
    if (parsed.length === info.dim && parsed.every(Number.isFinite)) code = parsed;
  }
  setCode(code);
  await Promise.all([interpolate(), sample()]);
  showNeighbours((await api("/api/neighbours", {z: code, k: 8})).neighbours);
  document.body.dataset.ready = "1";
}

start();
