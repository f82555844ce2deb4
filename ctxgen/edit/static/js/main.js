// ctxgen edit: the page's controller. The server owns the scene text and every rule (validation, layout,
// layers, rendering); the page draws, turns gestures and typing into field edits, and shows what comes back.

import { api } from "./api.js";
import { Canvas } from "./canvas.js";
import { defaultBox, pickFromFolder, uploadFile } from "./files.js";
import { fillForm, instanceOf, placeIssues, readField } from "./forms.js";
import { layoutTab, refreshPreview } from "./preview.js";
import { RenderPanel } from "./render.js";
import { instanceList, instancePanel, onInstanceClick, onInstanceInput, problems, select } from "./sidebar.js";
import { $, S, boxKey, edit, failed, fromPx, geometry, hooks, instances, later, mutate, setOp, status, toPx } from "./state.js";

// ---- showing the scene --------------------------------------------------------------------------------
function setScene(scene) {
  S.scene = scene;
  S.geom = geometry();
  $("file-name").textContent = scene.file;
  $("dirty").hidden = !scene.dirty;
  $("undo").disabled = S.readOnly || !S.undo.length;
  $("redo").disabled = S.readOnly || !S.redo.length;
  $("save").disabled = S.readOnly;
  if (S.selected !== null && S.selected >= instances().length) S.selected = null;
  drawCanvas();
  fillForm($("scene-form-root"), scene.data);
  instanceList();
  instancePanel();
  problems();
  const yaml = $("yaml-text");
  if (document.activeElement !== yaml) yaml.value = scene.text;
  placeIssues(document.querySelector(".side"), scene.issues, scene.warnings);
  refreshPreview();
}

function drawCanvas() {
  const g = geometry();
  canvas.setSize(g.W, g.H);
  const bad = new Set(S.scene.issues.map((i) => instanceOf(i.path)).filter((i) => i !== null));
  const p = S.preview && S.preview.ok ? S.preview : null;
  const items = instances().map((inst, i) => ({
    box: toPx(inst, g), colour: S.info.palette[i % S.info.palette.length], z: inst && inst.z,
    label: (inst && typeof inst.label === "string" && inst.label) || `#${i}`, bad: bad.has(i),
  }));
  canvas.setItems(items, p ? p.order : [], p && p.version === S.scene.version ? p.token_boxes : []);
  canvas.select(S.selected);
}

// ---- canvas gestures ----------------------------------------------------------------------------------
function boxChanged(i, px, phase) {
  const inst = instances()[i];
  if (!inst) return;
  const key = boxKey(inst);
  const value = fromPx(px, key, geometry());
  const send = () => edit([setOp(["instances", i, key], value)]);
  if (phase === "nudge") later(`nudge-${i}`, 300, send);
  else send();
}

function layer(i, action) {
  mutate((version) => api("POST", "/api/scene/layer", { version, instance: i, action }));
}

function removeInstance(i) {
  S.selected = null;
  edit([{ op: "remove", path: ["instances", i] }]);
}

async function addInstance(image, size, alpha = true) {
  const g = geometry();
  const stem = image.split("/").pop().replace(/\.[^.]+$/, "").replace(/[-_]+/g, " ");
  const value = { image, box: fromPx(defaultBox(g.W, g.H, size), "box", g), label: stem };
  if (!alpha) value.mask = "auto";
  const index = instances().length;
  await edit([{ op: "append", path: ["instances"], value }]);
  if (instances().length > index) { select(index); showTab("instance"); }
}

// ---- tabs, buttons, keys ------------------------------------------------------------------------------
function showTab(name) {
  S.tab = name;
  for (const b of document.querySelectorAll(".tabs button")) b.setAttribute("aria-selected", String(b.dataset.tab === name));
  for (const p of document.querySelectorAll(".panel")) p.hidden = p.dataset.panel !== name;
  if (name === "layout") layoutTab();
  if (name === "instance") instancePanel();
}

async function save(overwrite = false) {
  await S.queue;
  try {
    const r = await api("POST", "/api/scene/save", { version: S.scene.version, overwrite });
    setScene(r.scene);
    const name = r.saved.split("/").pop();
    status(`saved ${name}${r.backup ? ` · the previous version is in ${r.backup.split("/").pop()}` : ""}`, "ok");
  } catch (err) {
    if (err.status === 409 && /changed on disk/.test(err.message) && confirm(`${err.message}.\n\nSave anyway?`)) return save(true);
    failed(err);
  }
}

function undo(back = true) {
  const from = back ? S.undo : S.redo;
  const to = back ? S.redo : S.undo;
  if (!from.length) return;
  const text = from.pop();
  to.push(S.scene.text);
  mutate((version) => api("PUT", "/api/scene/text", { version, text }), { undoable: false });
}

function wire() {
  document.querySelectorAll(".tabs button").forEach((b) => b.addEventListener("click", () => showTab(b.dataset.tab)));
  const sceneForm = $("scene-form-root");
  sceneForm.addEventListener("input", (e) => {
    const input = e.target;
    if (!input.dataset.key || S.readOnly) return;
    later(`scene.${input.dataset.key}`, input.tagName === "SELECT" ? 0 : 350,
      () => edit([setOp([input.dataset.key], readField(input, sceneForm))]));
  });
  $("instance-form").addEventListener("input", (e) => { if (e.target.tagName !== "SELECT") onInstanceInput(e); });
  $("instance-form").addEventListener("change", (e) => { if (e.target.tagName === "SELECT") onInstanceInput(e); });
  $("instance-form").addEventListener("click", onInstanceClick);
  $("yaml-text").addEventListener("input", () => later("yaml", 600, () => {
    const text = $("yaml-text").value;
    mutate((version) => api("PUT", "/api/scene/text", { version, text }));
  }));
  $("save").addEventListener("click", () => save());
  $("undo").addEventListener("click", () => undo(true));
  $("redo").addEventListener("click", () => undo(false));
  $("reload").addEventListener("click", () => {
    if (!S.scene.dirty || confirm("Drop the unsaved changes and read the file again?")) {
      mutate((version) => api("POST", "/api/scene/reload", { version }));
    }
  });
  $("snap").addEventListener("change", (e) => { canvas.snap = e.target.checked; });
  $("grid").addEventListener("change", (e) => canvas.setGrid(e.target.checked));
  document.querySelectorAll("[data-layer]").forEach((b) => b.addEventListener("click", () => {
    if (S.selected !== null) layer(S.selected, b.dataset.layer);
  }));
  $("delete-instance").addEventListener("click", () => { if (S.selected !== null) removeInstance(S.selected); });
  $("add-upload").addEventListener("click", () => $("upload-input").click());
  $("upload-input").addEventListener("change", async (e) => {
    for (const file of e.target.files) {
      try {
        const up = await uploadFile(file);
        await addInstance(up.path, up.size, up.alpha);
        status(`uploaded ${up.path}${up.alpha ? "" : " (no transparency: mask set to auto)"}`, "ok");
      } catch (err) { status(err.message, "error"); }
    }
    e.target.value = "";
  });
  $("add-pick").addEventListener("click", async () => {
    const picked = await pickFromFolder();
    if (picked) addInstance(picked, null, !/\.jpe?g$/i.test(picked));
  });
  $("show-masks").addEventListener("click", () => { $("masks-image").hidden = false; layoutTab(); });
  document.addEventListener("keydown", (e) => {
    const typing = ["INPUT", "TEXTAREA", "SELECT"].includes(document.activeElement.tagName);
    if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "s") { e.preventDefault(); if (!S.readOnly) save(); }
    else if ((e.ctrlKey || e.metaKey) && !typing && e.key.toLowerCase() === "z") { e.preventDefault(); undo(!e.shiftKey); }
    else if ((e.ctrlKey || e.metaKey) && !typing && e.key.toLowerCase() === "y") { e.preventDefault(); undo(false); }
  });
  window.addEventListener("beforeunload", (e) => { if (S.scene && S.scene.dirty) e.preventDefault(); });
}

// ---- boot ---------------------------------------------------------------------------------------------
const canvas = new Canvas($("canvas"), {
  select: (i) => { select(i); if (i !== null && S.tab === "scene") showTab("instance"); },
  change: boxChanged, remove: removeInstance, layer,
});

hooks.canvas = canvas;
hooks.setScene = setScene;
hooks.drawCanvas = drawCanvas;
hooks.showTab = showTab;

async function boot() {
  wire();
  S.info = await api("GET", "/api/info");
  $("model-name").textContent = `model: ${S.info.model}`;
  canvas.readOnly = S.readOnly;
  $("readonly").hidden = !S.readOnly;
  if (S.readOnly) {
    document.querySelectorAll(".actions button, .toolbar button, #render, #reload, .side input, .side select, .side textarea")
      .forEach((b) => { b.disabled = true; });
  }
  setScene(await api("GET", "/api/scene"));
  select(null);
  const panel = new RenderPanel(status);
  await panel.history();
  const running = (await api("GET", "/api/jobs")).filter((j) => !["done", "failed", "cancelled"].includes(j.state));
  const render = running.find((j) => j.kind === "render");
  if (render) panel.track(render);
  document.body.dataset.ready = "1";
}

boot().catch((err) => status(err.message, "error"));
