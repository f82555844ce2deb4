// The layout preview: asked after every change (the newest answer wins), drawn as the canvas background;
// the `ctxgen layout --preview` picture and the mask map on the Layout tab; SAM masks computed when needed.

import { api, follow } from "./api.js";
import { instanceList, instancePanel } from "./sidebar.js";
import { $, S, hooks, instances, status } from "./state.js";

export async function refreshPreview() {
  if (S.previewBusy) { S.previewAgain = true; return; }
  S.previewBusy = true;
  try {
    do {
      S.previewAgain = false;
      if (!S.scene.valid) { showPreview({ ok: false, version: S.scene.version, problems: [] }); break; }
      showPreview(await api("GET", "/api/preview"));
    } while (S.previewAgain);
  } catch (err) {
    status(err.message, "error");
  } finally {
    S.previewBusy = false;
  }
}

function showPreview(p) {
  const note = $("canvas-note");
  if (p.ok) {
    S.preview = p;
    const img = new Image();
    img.onload = () => { hooks.canvas.setImage(p.layout_url); document.body.dataset.previewVersion = String(p.version); };
    img.src = p.layout_url;
    note.hidden = true;
    footer(p);
    hooks.drawCanvas();
    instanceList();
    instancePanel();
    if (S.tab === "layout") layoutTab();
    return;
  }
  hooks.canvas.svg.style.opacity = "";
  if (p.needs_masks && p.needs_masks.length) {
    note.className = "canvas-note info";
    note.textContent = `computing the SAM mask of instance ${p.needs_masks.join(", ")}…`;
    note.hidden = false;
    startMasks();
  } else {
    const n = S.scene.issues.length;
    note.className = "canvas-note";
    note.textContent = n ? `The layout waits for a valid scene: ${n} problem${n > 1 ? "s" : ""} (see the list on the right).`
      : (p.problems || []).join("\n");
    note.hidden = !note.textContent;
  }
}

function footer(p) {
  const names = p.order.map((i) => ((instances()[i] || {}).label || `#${i}`));
  $("footer").replaceChildren(...[
    `${p.size[0]} × ${p.size[1]} px`, `${p.size[0] / 16} × ${p.size[1] / 16} tokens`, `reference base ${p.base}`,
    `layers bottom → top: ${names.join(", ") || "user layout"}`, `preview ${p.ms} ms`,
  ].map((t) => Object.assign(document.createElement("span"), { textContent: t })));
}

export function layoutTab() {
  const p = S.preview;
  if (!p || !p.ok) return;
  const url = p.layout_url.replace("layout.jpg", "preview.png");
  if ($("preview-image").getAttribute("src") !== url) $("preview-image").src = url;
  $("preview-link").href = url;
  if (!$("masks-image").hidden) {
    $("masks-image").src = $("masks-link").href = p.layout_url.replace("layout.jpg", "masks.png");
  }
}

export async function startMasks() {
  if (S.masksJob || S.readOnly) return;
  S.masksJob = { id: null }; // starting: later previews must not ask twice
  try {
    S.masksJob = await api("POST", "/api/masks");
  } catch (err) {
    S.masksJob = null;
    showMaskError(err.message);
    return;
  }
  follow(S.masksJob.id, {
    progress: (e) => status(`SAM: ${e.stage || "working"}`),
    done: () => { S.masksJob = null; status("SAM masks ready", "ok"); refreshPreview(); },
    failed: (e) => { S.masksJob = null; showMaskError(e.error); },
    cancelled: () => { S.masksJob = null; showMaskError("SAM was cancelled"); },
  });
}

function showMaskError(text) {
  const note = $("canvas-note");
  note.className = "canvas-note";
  note.textContent = `SAM could not run: ${text}`;
  note.hidden = false;
}

