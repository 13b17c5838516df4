// supersub explore: every label and name reaches the page through textContent, never as HTML.
"use strict";

const TOKEN = document.querySelector('meta[name="supersub-token"]').content;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "text") node.textContent = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k === "onclick") node.addEventListener("click", v);
    else node.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

function pathUrl(kind, ref) {
  return "/img/" + kind + "/" + ref.split("/").map(encodeURIComponent).join("/");
}

async function api(method, url, body) {
  const init = { method, headers: { "X-Supersub-Token": TOKEN } };
  if (method === "POST") {
    if (body instanceof FormData) init.body = body;
    else { init.body = JSON.stringify(body || {}); init.headers["Content-Type"] = "application/json"; }
  }
  const res = await fetch(url, init);
  let data = null;
  try { data = await res.json(); } catch (e) { data = { error: res.statusText }; }
  if (!res.ok) throw new Error(data.error || res.statusText);
  return data;
}

function showError(err) {
  const box = document.getElementById("error");
  if (!box) return;
  box.hidden = !err;
  box.textContent = err ? String(err.message || err) : "";
}

function pct(x) { return (100 * x).toFixed(1) + "%"; }

function bars(container, rows) {
  container.replaceChildren();
  for (const r of rows) {
    const fill = el("div", { class: "fill" });
    fill.style.width = Math.max(0, Math.min(100, 100 * r.p)).toFixed(1) + "%";
    container.append(el("div", { class: "bar", dataset: { key: r.key } },
      el("span", { class: "name", text: r.name, title: r.name }), el("div", { class: "track" }, fill),
      el("span", { class: "p", text: pct(r.p) })));
  }
}

// ------------------------------------------------------------------ query page
const state = { query: null, steer: null, result: null, renders: 0 };

function emptySteer() {
  return { exclude_ids: [], exclude_labels: [], exclude_sources: [], label_weights: {}, source_weights: {} };
}

function steerText(s) {
  const parts = [];
  if (s.exclude_ids.length) parts.push("without entries " + s.exclude_ids.join(", "));
  if (s.exclude_labels.length) parts.push("without classes " + s.exclude_labels.join(", "));
  if (s.exclude_sources.length) parts.push("without sources " + s.exclude_sources.join(", "));
  for (const [k, v] of Object.entries(s.label_weights)) parts.push("class " + k + " ×" + v);
  for (const [k, v] of Object.entries(s.source_weights)) parts.push("source " + k + " ×" + v);
  return parts.join("; ");
}

function render(r) {
  state.result = r;
  state.query = r.query;
  document.getElementById("result").hidden = false;
  const img = document.getElementById("query-image");
  img.src = "/img/query/" + encodeURIComponent(r.query);
  img.alt = r.title;
  const pred = r.prediction.class === null ? "nothing voted" : r.prediction.label + " (" + r.prediction.class + ")";
  document.getElementById("prediction").textContent = pred;
  const hedged = document.getElementById("hedged");
  const h = r.hedged;
  hedged.hidden = !h;
  if (h) {
    const pct = Math.round(100 * h.accuracy) + "%";
    const what = h.error ? h.error
      : h.root ? "At " + pct + " accuracy it does not know."
      : "At " + pct + " accuracy: pretty sure it is " + (h.is_class ? "" : "a ") + h.label +
        " (probability " + h.mass.toFixed(2) + ").";
    const path = h.path ? " Path: " + h.path.map(x => x.label + " " + x.mass.toFixed(2)).join(" › ") : "";
    hedged.textContent = what + path + (h.stale ? " (The memory was edited after calibration: recalibrate.)" : "");
  }
  const unlike = document.getElementById("unlike");
  unlike.hidden = !r.unlike;
  unlike.textContent = r.unlike ? "Unlike the memory: the nearest entry has similarity " + r.unlike.nearest.toFixed(2) +
    ", below " + r.unlike.typical.toFixed(2) + ", which 95% of the memory's entries reach with their nearest neighbour." : "";
  bars(document.getElementById("route"), r.route.map(x => ({ key: x.superclass, name: x.name, p: x.p })));
  bars(document.getElementById("top"), r.top.map(x => ({ key: x.class, name: x.label + " (" + x.class + ")", p: x.p })));
  const diff = document.getElementById("diff");
  diff.replaceChildren();
  diff.hidden = !r.steered;
  if (r.steered) {
    const before = r.baseline.prediction;
    diff.append(el("p", { id: "diff-line", text: r.changed
      ? "Steering changed the prediction: " + (before.label || "nothing") + " → " + (r.prediction.label || "nothing voted") + "."
      : "Steering kept the prediction (" + (before.label || "nothing") + ")." }));
    const list = el("ul");
    for (const d of r.delta) list.append(el("li", { text: d.label + ": " + pct(d.before) + " → " + pct(d.after) }));
    diff.append(list);
  }
  const line = document.getElementById("steer-line");
  line.hidden = !state.steer;
  document.getElementById("steer-text").textContent = state.steer ? steerText(state.steer) : "";
  const grid = document.getElementById("neighbours");
  grid.replaceChildren();
  for (const nb of r.neighbours) {
    const picture = nb.image ? el("img", { src: pathUrl("memory", nb.image), alt: nb.label, loading: "eager" })
      : el("div", { class: "noimg", text: "no stored image" });
    const steerBy = (change) => () => { state.steer = state.steer || emptySteer(); change(state.steer); predict(); };
    grid.append(el("figure", { class: "neighbour", dataset: { id: String(nb.id), source: nb.source, cls: nb.class } },
      picture,
      el("figcaption", {},
        el("div", { class: "label", text: nb.label + " (" + nb.class + ")" }),
        el("div", { text: "source " + nb.source }),
        el("div", { text: "sim " + nb.similarity.toFixed(3) + " · weight " + nb.weight.toPrecision(3) + " · vote " + pct(nb.share) }),
        el("button", { type: "button", class: "ex-id", text: "exclude", onclick: steerBy(s => s.exclude_ids.push(nb.id)) }),
        el("button", { type: "button", class: "ex-source", text: "exclude source",
          onclick: steerBy(s => { if (!s.exclude_sources.includes(nb.source)) s.exclude_sources.push(nb.source); }) }),
        el("button", { type: "button", class: "ex-class", text: "exclude class",
          onclick: steerBy(s => { if (!s.exclude_labels.includes(nb.class)) s.exclude_labels.push(nb.class); }) }),
        el("button", { type: "button", class: "half-class", text: "class ×0.5",
          onclick: steerBy(s => { s.label_weights[nb.class] = (s.label_weights[nb.class] || 1) * 0.5; }) }),
        el("button", { type: "button", class: "half-source", text: "source ×0.5",
          onclick: steerBy(s => { s.source_weights[nb.source] = (s.source_weights[nb.source] || 1) * 0.5; }) }))));
  }
  document.body.dataset.rendered = String(++state.renders);
}

async function run(promise) {
  try { showError(null); render(await promise); } catch (e) { showError(e); }
}

function predict() {
  return run(api("POST", "/api/predict", { query: state.query, steer: state.steer }));
}

async function refreshLog() {
  const s = await api("GET", "/api/summary");
  const body = document.querySelector("#edit-log tbody");
  body.replaceChildren();
  for (const e of s.edits) {
    body.append(el("tr", {}, el("td", { text: e.when }), el("td", { text: e.action }), el("td", { text: e.target }),
      el("td", { text: String(e.entries) }), el("td", { text: e.superclasses.join(", ") })));
  }
  const select = document.getElementById("unlearn-source");
  const chosen = select.value;
  select.replaceChildren(...s.sources.map(src => el("option", { value: src, text: src })));
  if (s.sources.includes(chosen)) select.value = chosen;
  document.getElementById("model-summary").textContent = s.model + ": " + s.entries + " entries, " + s.classes +
    " classes, " + s.superclasses.length + " superclasses, k = " + s.k + ", " + s.router + " router";
}

async function edit(question, request) {
  if (!window.confirm(question)) return;
  try {
    showError(null);
    await request();
    await refreshLog();
    if (state.query) await predict();
    document.body.dataset.edited = String(Date.now());
  } catch (e) { showError(e); }
}

function queryPage() {
  state.steer = null;
  document.getElementById("upload").addEventListener("change", (ev) => {
    const file = ev.target.files[0];
    if (!file) return;
    const form = new FormData();
    form.append("image", file);
    ev.target.value = "";  // the same file can be chosen again
    state.steer = null;
    run(api("POST", "/api/query", form));
  });
  const pick = document.getElementById("pick-class");
  if (pick) pick.addEventListener("change", async () => {
    const grid = document.getElementById("pick-grid");
    grid.replaceChildren();
    if (!pick.value) return;
    try {
      const d = await api("GET", "/api/data?class=" + encodeURIComponent(pick.value));
      for (const ref of d.refs) {
        grid.append(el("button", { type: "button", class: "pick", title: ref, onclick: () => {
          state.steer = null; run(api("POST", "/api/query-ref", { kind: "data", ref })); } },
          el("img", { src: pathUrl("data", ref), alt: d.label })));
      }
    } catch (e) { showError(e); }
  });
  document.getElementById("steer-reset").addEventListener("click", () => { state.steer = null; predict(); });
  document.getElementById("form-unlearn-class").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const cls = document.getElementById("unlearn-class").value.trim();
    edit("Unlearn every entry of class " + cls + "? This is saved to the model.",
      () => api("POST", "/api/edit", { action: "unlearn_class", class: cls }));
  });
  document.getElementById("form-unlearn-source").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const src = document.getElementById("unlearn-source").value;
    edit("Unlearn every entry of source " + src + "? This is saved to the model.",
      () => api("POST", "/api/edit", { action: "unlearn_source", source: src }));
  });
  document.getElementById("form-weight").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const cls = document.getElementById("weight-class").value.trim();
    const src = document.getElementById("weight-source").value.trim();
    const w = Number(document.getElementById("weight-value").value);
    edit("Set the weight of " + [cls && "class " + cls, src && "source " + src].filter(Boolean).join(" and ") +
      " to " + w + "? This is saved to the model.",
      () => api("POST", "/api/edit", { action: "set_weight", class: cls, source: src, weight: w }));
  });
  document.getElementById("form-add").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const form = new FormData(ev.target);
    edit("Add " + form.getAll("images").length + " images to class " + form.get("class") + "? This is saved to the model.",
      () => api("POST", "/api/add", form));
  });
  refreshLog().catch(showError);
  const params = new URLSearchParams(window.location.search);
  if (params.get("q")) { state.query = params.get("q"); predict(); }
}

// --------------------------------------------------------------- mistakes page
function mistakesPage() {
  const cells = Array.from(document.querySelectorAll("#matrix button.cell"));
  const top = Math.max(1, ...cells.map(c => Number(c.dataset.count)));
  for (const c of cells) {
    const a = Number(c.dataset.count) / top;
    c.style.background = "rgba(197, 48, 48, " + (0.08 + 0.85 * a).toFixed(3) + ")";
    if (a > 0.55) c.classList.add("dark");
    c.addEventListener("click", () => openCell(c.dataset.i, c.dataset.j));
  }
}

async function openCell(i, j) {
  try {
    const d = await api("GET", "/api/mistakes/cell?i=" + i + "&j=" + j);
    document.getElementById("pairs-panel").hidden = false;
    document.getElementById("pairs-title").textContent = "True " + d.true_superclass + ", predicted " + d.pred_superclass +
      ": most-confused class pairs";
    const list = document.getElementById("pairs");
    list.replaceChildren(...d.pairs.map(p => el("li", {},
      el("button", { type: "button", class: "pair", onclick: () => openExamples(p.true, p.pred),
        text: p.true_label + " (" + p.true + ") taken for " + p.pred_label + " (" + p.pred + "): " + p.count }))));
    document.body.dataset.cell = i + "," + j;
  } catch (e) { console.warn(e.message); }
}

async function openExamples(t, p) {
  const d = await api("GET", "/api/mistakes/examples?true=" + encodeURIComponent(t) + "&pred=" + encodeURIComponent(p));
  document.getElementById("examples-panel").hidden = false;
  document.getElementById("examples-title").textContent = d.true_label + " taken for " + d.pred_label +
    " (" + d.examples.length + " shown" + (d.left_out ? ", " + d.left_out + " without a readable image" : "") + ")";
  const box = document.getElementById("examples");
  box.replaceChildren();
  for (const x of d.examples) {
    const grid = el("div", { class: "grid" });
    grid.append(el("figure", { class: "query" },
      el("a", { href: "/?q=" + encodeURIComponent(x.query) }, el("img", { src: "/img/query/" + encodeURIComponent(x.query), alt: x.ref })),
      el("figcaption", { text: x.ref + (x.score !== null ? " · score " + x.score.toFixed(2) : "") +
        " · now: " + (x.now.label || "nothing") })));
    for (const nb of x.outvoters) {
      grid.append(el("figure", { class: "outvoter" },
        nb.image ? el("img", { src: pathUrl("memory", nb.image), alt: nb.label }) : el("div", { class: "noimg", text: "no stored image" }),
        el("figcaption", { text: nb.label + " · " + nb.source + " · sim " + nb.similarity.toFixed(3) + " · vote " + pct(nb.share) })));
    }
    box.append(el("div", { class: "example" }, grid));
  }
  document.body.dataset.examples = String(d.examples.length);
}

document.addEventListener("DOMContentLoaded", () => {
  if (document.body.dataset.page === "query") queryPage();
  if (document.body.dataset.page === "mistakes") mistakesPage();
});
