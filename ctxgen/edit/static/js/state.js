// The page's shared state and the one way to change the scene: versioned, serialised, undoable field edits.

import { api, ApiError, hasToken } from "./api.js";

// Filled by main.js: what other modules call back into (the canvas, redraws, tab and selection changes).
export const hooks = { canvas: null, setScene: null, drawCanvas: null, showTab: null };

export const $ = (id) => document.getElementById(id);
export const S = {
  info: null, scene: null, preview: null, selected: null, tab: "scene", undo: [], redo: [],
  queue: Promise.resolve(), previewBusy: false, previewAgain: false, masksJob: null,
  geom: { W: 768, H: 768, cw: 768, ch: 768 },
  timers: new Map(), readOnly: !hasToken(),
};

// ---- status line ------------------------------------------------------------------------------------
export function status(text, kind = "") {
  const el = $("status");
  el.textContent = text || "";
  el.className = `status ${kind}`;
}

// ---- geometry: scene units <-> output pixels (drawing only; the server clips and checks) -------------
const pair = (v) => (Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === "number" && x > 0 && x <= 8192) ? v : null);
export function geometry() {
  if (!S.scene || !S.scene.valid) return S.geom; // while the size is being typed, draw with the last valid one
  const d = S.scene.data;
  const size = pair(d.size) || [768, 768];
  const canvas = pair(d.canvas) || size;
  return { W: size[0], H: size[1], cw: canvas[0], ch: canvas[1] };
}
const quad = (b) => Array.isArray(b) && b.length === 4 && b.every((x) => typeof x === "number");
export function toPx(inst, g) {
  if (!inst || typeof inst !== "object") return null;
  if (quad(inst.box)) return inst.box.map((v, k) => (v * (k % 2 ? g.H / g.ch : g.W / g.cw)));
  if (quad(inst.box_norm)) return inst.box_norm.map((v, k) => v * (k % 2 ? g.H : g.W));
  return null;
}
const round = (v, digits) => Math.round(v * 10 ** digits) / 10 ** digits;
export function fromPx(px, key, g) {
  if (key === "box_norm") return px.map((v, k) => round(v / (k % 2 ? g.H : g.W), 4));
  return px.map((v, k) => round(v * (k % 2 ? g.ch / g.H : g.cw / g.W), 2));
}
export const boxKey = (inst) => (inst && inst.box === undefined && inst.box_norm !== undefined ? "box_norm" : "box");
export const instances = () => (S.scene && S.scene.data && Array.isArray(S.scene.data.instances) ? S.scene.data.instances : []);

// ---- edits: serialised, versioned, undoable -----------------------------------------------------------
export function mutate(request, { undoable = true } = {}) {
  S.queue = S.queue.then(async () => {
    const before = S.scene.text;
    try {
      const scene = await request(S.scene.version);
      if (undoable && scene.text !== before) { S.undo.push(before); S.redo = []; }
      hooks.setScene(scene);
    } catch (err) {
      failed(err);
    }
  });
  return S.queue;
}

export function failed(err) {
  if (err instanceof ApiError && err.status === 409 && err.body.scene) {
    hooks.setScene(err.body.scene);
    status(err.message, "error");
  } else {
    status(err.message, "error");
  }
}

export const edit = (ops) => mutate((version) => api("POST", "/api/scene/edit", { version, ops }));
export const setOp = (path, value) => (value === undefined ? { op: "delete", path } : { op: "set", path, value });

export function later(key, ms, fn) {
  clearTimeout(S.timers.get(key));
  S.timers.set(key, setTimeout(() => { S.timers.delete(key); fn(); }, ms));
}

