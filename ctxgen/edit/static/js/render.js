// The Render tab: start a render, follow its progress, cancel it visibly, show results and the history.

import { api, follow } from "./api.js";

const $ = (id) => document.getElementById(id);

export class RenderPanel {
  constructor(status) {
    this.status = status; // (text, kind) -> shows a line in the header
    this.job = null;
    this.shown = null; // the history entry on screen
    $("render").addEventListener("click", () => this.start());
    $("cancel").addEventListener("click", () => this.cancel());
  }

  async start() {
    $("render-error").hidden = true;
    try {
      const job = await api("POST", "/api/render");
      this.track(job);
    } catch (err) {
      this.fail(err.message);
    }
  }

  // Follow a job (also one found running when the page opens: closing the page cancelled nothing).
  track(job) {
    this.job = job;
    $("render").disabled = true;
    $("cancel").hidden = false;
    $("cancel").disabled = false;
    this.progress({ stage: job.state === "queued" ? "waiting for the worker" : "rendering", ...job.progress });
    follow(job.id, {
      progress: (e) => this.progress(this.job.progress = { ...this.job.progress, ...e }),
      record: (e) => { if (e.entry) this.show(e.entry); if (e.status === "failed") this.fail(e.error); },
      cancelling: () => { $("cancel").disabled = true; this.progress({ ...this.job.progress, stage: "cancelling…" }); },
      done: (e) => this.finish(`rendered in ${e.result.seconds} s`, "ok"),
      failed: (e) => { this.fail(e.error); this.finish("render failed", "error"); },
      cancelled: (e) => this.finish(e.error || "render cancelled", "error"),
      lost: () => this.finish("lost the connection to the editor server", "error"),
    });
  }

  progress(p) {
    const bar = $("progress");
    bar.hidden = false;
    const steps = p.steps || 0;
    const done = steps ? (p.step || 0) / steps : 0;
    bar.querySelector(".fill").style.width = `${Math.round(done * 100)}%`;
    const image = p.seeds > 1 ? ` · image ${Math.min((p.done || 0) + 1, p.seeds)} of ${p.seeds}` : "";
    bar.querySelector(".text").textContent = steps ? `step ${p.step} of ${steps}${image}` : (p.stage || "starting");
    this.status(steps ? `rendering: step ${p.step}/${steps}` : `render: ${p.stage || "starting"}`);
  }

  async cancel() {
    if (!this.job) return;
    $("cancel").disabled = true;
    try { await api("POST", `/api/jobs/${this.job.id}/cancel`); } catch (err) { this.fail(err.message); }
  }

  finish(text, kind) {
    this.job = null;
    $("render").disabled = false;
    $("cancel").hidden = true;
    $("progress").hidden = true;
    this.status(text, kind);
    this.history();
  }

  fail(text) {
    const box = $("render-error");
    box.textContent = text;
    box.hidden = !text;
  }

  async history() {
    const entries = await api("GET", "/api/renders");
    const grid = $("history");
    grid.replaceChildren();
    if (!entries.length) {
      grid.innerHTML = '<p class="hint">Renders of this scene appear here.</p>';
      return;
    }
    for (const e of entries) {
      const fig = document.createElement("figure");
      fig.dataset.id = e.id;
      fig.classList.toggle("on", this.shown && this.shown.id === e.id);
      const img = document.createElement("img");
      img.src = `/api/renders/${e.id}/${e.image}`;
      img.alt = `seed ${e.seed}`;
      const cap = document.createElement("figcaption");
      cap.textContent = `seed ${e.seed} · ${e.steps} steps · ${new Date(e.time * 1000).toLocaleTimeString()}`;
      fig.append(img, cap);
      fig.addEventListener("click", () => this.show(e));
      grid.appendChild(fig);
    }
    if (!this.shown) this.show(entries[0]);
  }

  show(entry) {
    this.shown = entry;
    $("result").hidden = false;
    const img = $("result-image");
    const base = `/api/renders/${entry.id}`;
    const stem = entry.image.replace(/\.png$/, "");
    img.src = $("result-link").href = `${base}/${entry.image}`;
    img.dataset.entry = entry.id;
    const chips = $("overlay-tabs");
    chips.replaceChildren();
    for (const name of ["image", ...entry.overlays]) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = name;
      b.classList.toggle("on", name === "image");
      b.addEventListener("click", () => {
        img.src = $("result-link").href = name === "image" ? `${base}/${entry.image}` : `${base}/${stem}.debug/${name}.png`;
        for (const c of chips.children) c.classList.toggle("on", c === b);
      });
      chips.appendChild(b);
    }
    for (const fig of $("history").querySelectorAll("figure")) fig.classList.toggle("on", fig.dataset.id === entry.id);
  }
}
