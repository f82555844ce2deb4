// The scene canvas: the server's composite as the background, boxes drawn and dragged locally (SVG).
// Only drawing happens here: boxes come from the scene data, layers and token boxes from the server's preview.

const NS = "http://www.w3.org/2000/svg";
const TOKEN = 16;
const HANDLE = 11; // screen pixels
const PAUSE_MS = 220; // a drag that rests this long asks the server for a preview
const EDGES = ["nw", "n", "ne", "e", "se", "s", "sw", "w"];
const CURSORS = { nw: "nwse-resize", se: "nwse-resize", ne: "nesw-resize", sw: "nesw-resize",
  n: "ns-resize", s: "ns-resize", e: "ew-resize", w: "ew-resize" };

function el(name, attrs = {}, parent = null) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

export class Canvas {
  constructor(svg, handlers) {
    this.svg = svg;
    this.on = handlers; // select(i), change(i, box, phase), remove(i), layer(i, action)
    this.W = 768; this.H = 768; this.scale = 1;
    this.items = []; // [{box, colour, label, bad}] per instance
    this.order = []; this.tokenBoxes = []; this.selected = null; this.drag = null;
    this.snap = true; this.readOnly = false;
    this.image = el("image", { x: 0, y: 0, preserveAspectRatio: "none" }, svg);
    this.grid = el("g", { class: "tokengrid" }, svg);
    this.layer = el("g", {}, svg);
    svg.addEventListener("pointerdown", (e) => this.down(e));
    svg.addEventListener("pointermove", (e) => this.move(e));
    svg.addEventListener("pointerup", (e) => this.up(e));
    svg.addEventListener("pointercancel", (e) => this.up(e));
    svg.addEventListener("keydown", (e) => this.key(e));
    new ResizeObserver(() => this.fit()).observe(svg.parentElement);
  }

  setSize(W, H) {
    if (W === this.W && H === this.H) return;
    this.W = W; this.H = H;
    this.svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    this.image.setAttribute("width", W); this.image.setAttribute("height", H);
    this.fit();
  }

  setImage(url) { if (url) this.image.setAttribute("href", url); }
  setGrid(on) { this.grid.style.display = on ? "" : "none"; }

  setItems(items, order, tokenBoxes) {
    this.items = items; this.order = order || []; this.tokenBoxes = tokenBoxes || [];
    if (this.selected !== null && this.selected >= items.length) this.selected = null;
    this.draw();
  }

  select(i) {
    this.selected = i;
    this.draw();
  }

  fit() {
    const wrap = this.svg.parentElement.getBoundingClientRect();
    const s = Math.max(0.05, Math.min((wrap.width - 28) / this.W, (wrap.height - 28) / this.H));
    this.scale = s;
    this.svg.setAttribute("width", Math.round(this.W * s));
    this.svg.setAttribute("height", Math.round(this.H * s));
    if (!this.svg.getAttribute("viewBox")) this.svg.setAttribute("viewBox", `0 0 ${this.W} ${this.H}`);
    this.image.setAttribute("width", this.W); this.image.setAttribute("height", this.H);
    this.drawGrid();
    this.draw();
  }

  drawGrid() {
    this.grid.replaceChildren();
    if (this.scale * TOKEN < 4) return; // too dense to help
    for (let x = TOKEN; x < this.W; x += TOKEN) el("line", { x1: x, y1: 0, x2: x, y2: this.H, "vector-effect": "non-scaling-stroke" }, this.grid);
    for (let y = TOKEN; y < this.H; y += TOKEN) el("line", { x1: 0, y1: y, x2: this.W, y2: y, "vector-effect": "non-scaling-stroke" }, this.grid);
  }

  // Boxes bottom layer first, the selected one last (its handles stay reachable).
  draw() {
    this.layer.replaceChildren();
    const ranks = new Map(this.order.map((i, k) => [i, k]));
    const indices = this.items.map((_, i) => i).filter((i) => this.items[i].box);
    indices.sort((a, b) => (ranks.get(a) ?? -1) - (ranks.get(b) ?? -1));
    if (this.selected !== null) indices.push(...indices.splice(indices.indexOf(this.selected), 1));
    for (const i of indices) this.drawBox(i, ranks.get(i));
  }

  drawBox(i, rank) {
    const item = this.items[i];
    const box = this.drag && this.drag.i === i ? this.drag.box : item.box;
    const [x1, y1, x2, y2] = box;
    const sel = i === this.selected;
    const g = el("g", { class: `box${sel ? " selected" : ""}${item.bad ? " bad" : ""}`, "data-i": i }, this.layer);
    const tb = this.tokenBoxes[i];
    if (tb && !(this.drag && this.drag.i === i)) {
      el("rect", { class: "tokenbox", x: tb[0] * TOKEN, y: tb[1] * TOKEN, width: (tb[2] - tb[0]) * TOKEN,
        height: (tb[3] - tb[1]) * TOKEN, stroke: item.colour, "vector-effect": "non-scaling-stroke" }, g);
    }
    el("rect", { class: "fill", x: x1, y: y1, width: x2 - x1, height: y2 - y1, fill: item.colour,
      "fill-opacity": sel ? 0.12 : 0.05 }, g);
    el("rect", { class: "frame", x: x1, y: y1, width: x2 - x1, height: y2 - y1, stroke: item.colour,
      "vector-effect": "non-scaling-stroke", "data-i": i, "data-mode": "move" }, g);
    this.drawTag(g, item, rank, x1, y1);
    if (sel && !this.readOnly) {
      const h = HANDLE / this.scale;
      const pos = { nw: [x1, y1], n: [(x1 + x2) / 2, y1], ne: [x2, y1], e: [x2, (y1 + y2) / 2],
        se: [x2, y2], s: [(x1 + x2) / 2, y2], sw: [x1, y2], w: [x1, (y1 + y2) / 2] };
      for (const edge of EDGES) {
        const handle = el("rect", { class: "handle", x: pos[edge][0] - h / 2, y: pos[edge][1] - h / 2, width: h,
          height: h, "data-i": i, "data-mode": edge, "vector-effect": "non-scaling-stroke" }, g);
        handle.style.cursor = CURSORS[edge];
      }
    }
  }

  drawTag(g, item, rank, x, y) {
    const text = `${item.label}${rank === undefined ? "" : `  ·  layer ${rank}`}${item.z != null ? `  ·  z ${item.z}` : ""}`;
    const tag = el("g", { class: "tag", transform: `translate(${Math.max(0, x)} ${Math.max(0, y)}) scale(${1 / this.scale})` }, g);
    const width = 10 + text.length * 6.6;
    el("rect", { x: 7, y: 7, width, height: 18, rx: 3, fill: item.colour, "fill-opacity": 0.92 }, tag);
    const t = el("text", { x: 12, y: 20 }, tag);
    t.textContent = text;
  }

  point(e) {
    const m = this.svg.getScreenCTM().inverse();
    const p = new DOMPoint(e.clientX, e.clientY).matrixTransform(m);
    return [p.x, p.y];
  }

  down(e) {
    const target = e.target.closest("[data-mode]");
    this.svg.focus({ preventScroll: true });
    if (!target) { this.on.select(null); return; }
    const i = Number(target.getAttribute("data-i"));
    if (i !== this.selected) this.on.select(i);
    if (this.readOnly) return;
    this.drag = { i, mode: target.getAttribute("data-mode"), start: this.point(e), orig: [...this.items[i].box],
      box: [...this.items[i].box], moved: false, timer: null };
    this.svg.setPointerCapture(e.pointerId);
    e.preventDefault();
  }

  move(e) {
    const d = this.drag;
    if (!d) return;
    const [px, py] = this.point(e);
    const next = this.dragged(d, px - d.start[0], py - d.start[1]);
    if (next.every((v, k) => v === d.box[k])) return;
    d.box = next; d.moved = true;
    this.draw();
    clearTimeout(d.timer);
    d.timer = setTimeout(() => { if (this.drag === d) this.on.change(d.i, [...d.box], "pause"); }, PAUSE_MS);
  }

  up(e) {
    const d = this.drag;
    if (!d) return;
    clearTimeout(d.timer);
    this.drag = null;
    if (d.moved) {
      this.items[d.i] = { ...this.items[d.i], box: d.box };
      this.on.change(d.i, [...d.box], "end");
    }
    this.draw();
  }

  snapTo(v) { return this.snap ? Math.round(v / TOKEN) * TOKEN : Math.round(v); }

  dragged(d, dx, dy) {
    let [x1, y1, x2, y2] = d.orig;
    const min = TOKEN;
    if (d.mode === "move") {
      const w = x2 - x1, h = y2 - y1;
      let nx = this.snapTo(x1 + dx), ny = this.snapTo(y1 + dy);
      nx = Math.min(Math.max(nx, Math.min(0, x1)), Math.max(this.W - w, x1));
      ny = Math.min(Math.max(ny, Math.min(0, y1)), Math.max(this.H - h, y1));
      return [nx, ny, nx + w, ny + h];
    }
    if (d.mode.includes("w")) x1 = Math.min(Math.max(0, this.snapTo(x1 + dx)), x2 - min);
    if (d.mode.includes("e")) x2 = Math.max(Math.min(this.W, this.snapTo(x2 + dx)), x1 + min);
    if (d.mode.includes("n")) y1 = Math.min(Math.max(0, this.snapTo(y1 + dy)), y2 - min);
    if (d.mode.includes("s")) y2 = Math.max(Math.min(this.H, this.snapTo(y2 + dy)), y1 + min);
    return [x1, y1, x2, y2];
  }

  key(e) {
    const i = this.selected;
    if (e.key === "Escape") { this.on.select(null); return; }
    if (i === null || this.readOnly || e.ctrlKey || e.metaKey || e.altKey) return;
    const arrows = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
    if (arrows[e.key]) {
      const step = (this.snap ? TOKEN : 1) * (e.shiftKey ? 4 : 1);
      const [dx, dy] = arrows[e.key].map((v) => v * step);
      const b = this.items[i].box;
      const box = [b[0] + dx, b[1] + dy, b[2] + dx, b[3] + dy];
      this.items[i] = { ...this.items[i], box };
      this.draw();
      this.on.change(i, box, "nudge");
    } else if (e.key === "Delete" || e.key === "Backspace") {
      this.on.remove(i);
    } else if (e.key === "]" || e.key === "[") {
      this.on.layer(i, e.key === "]" ? "up" : "down");
    } else {
      return;
    }
    e.preventDefault();
  }
}
