// Adding references: upload an image into the scene's folder (refs/) or pick one already there.

import { api } from "./api.js";

const TOKEN = 16;

export async function uploadFile(file) {
  return api("POST", `/api/files?name=${encodeURIComponent(file.name)}`, file, { raw: true });
}

// Resolves with a folder-relative image path, or null when the dialog is closed.
export async function pickFromFolder() {
  const dialog = document.getElementById("picker");
  const grid = document.getElementById("picker-grid");
  grid.innerHTML = '<p class="hint">Looking for images…</p>';
  dialog.showModal();
  const files = await api("GET", "/api/files");
  grid.replaceChildren();
  if (!files.length) grid.innerHTML = '<p class="hint">No images in the scene\'s folder yet; upload one.</p>';
  return new Promise((resolve) => {
    for (const f of files) {
      const b = document.createElement("button");
      b.type = "button";
      b.dataset.path = f.path;
      const img = document.createElement("img");
      img.loading = "lazy";
      img.src = `/api/files/${f.path.split("/").map(encodeURIComponent).join("/")}`;
      img.alt = f.path;
      const name = document.createElement("span");
      name.textContent = f.path;
      b.append(img, name);
      b.addEventListener("click", () => { dialog.close(); resolve(f.path); });
      grid.appendChild(b);
    }
    dialog.addEventListener("close", () => resolve(null), { once: true });
  });
}

// A box for a new instance: centred, about 40% of the shorter side, the image's aspect, on the token grid.
export function defaultBox(W, H, size) {
  const aspect = size ? size[0] / size[1] : 1;
  const s = Math.min(W, H) * 0.4;
  const w = Math.max(TOKEN, Math.round((s * Math.sqrt(aspect)) / TOKEN) * TOKEN);
  const h = Math.max(TOKEN, Math.round((s / Math.sqrt(aspect)) / TOKEN) * TOKEN);
  const x = Math.round((W - w) / 2 / TOKEN) * TOKEN;
  const y = Math.round((H - h) / 2 / TOKEN) * TOKEN;
  return [x, y, x + Math.min(w, W), y + Math.min(h, H)];
}
