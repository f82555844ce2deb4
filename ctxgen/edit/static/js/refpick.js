// The SAM prompt on a reference (mask: auto): a click sets `point`, a drag sets `prompt_box`, both in the
// reference's own pixels. Only drawing and the click-to-pixel mapping happen here.

const NS = "http://www.w3.org/2000/svg";

export function attachRefPick(root, index, data, version, onPrompt) {
  const img = root.querySelector('[data-act="ref-image"]');
  const marks = root.querySelector('[data-act="ref-marks"]');
  const text = root.querySelector('[data-act="prompt-text"]');
  if (!img || img.closest("[hidden]")) return;
  // The reference's own size (for mapping clicks) is kept while a newer picture of the same image loads.
  const same = img.dataset.image === String(data && data.image);
  let size = same && img.dataset.size ? img.dataset.size.split("x").map(Number) : null;
  const src = `/api/instances/${index}/reference.png?v=${version}`;
  if (img.dataset.src !== src) {
    img.dataset.src = src;
    fetch(src).then((r) => {
      if (!r.ok) return null;
      const dims = (r.headers.get("x-image-size") || "").split("x").map(Number);
      size = dims.length === 2 ? dims : null;
      img.dataset.size = size ? size.join("x") : "";
      img.dataset.image = String(data && data.image);
      return r.blob();
    }).then((blob) => { if (blob) img.src = URL.createObjectURL(blob); draw(); });
  }
  const point = data && Array.isArray(data.point) ? data.point : null;
  const box = data && Array.isArray(data.prompt_box) ? data.prompt_box : null;
  text.textContent = point ? `point [${point.join(", ")}]` : box ? `box [${box.join(", ")}]` : "prompt: the whole image";

  function draw(temp) {
    marks.replaceChildren();
    if (!size) return;
    marks.setAttribute("viewBox", `0 0 ${size[0]} ${size[1]}`);
    marks.setAttribute("preserveAspectRatio", "none");
    const b = temp || box;
    if (b) {
      const r = document.createElementNS(NS, "rect");
      Object.entries({ x: b[0], y: b[1], width: b[2] - b[0], height: b[3] - b[1], fill: "none", stroke: "#ff4040",
        "stroke-width": 2, "vector-effect": "non-scaling-stroke" }).forEach(([k, v]) => r.setAttribute(k, v));
      marks.appendChild(r);
    }
    if (point && !temp) {
      const c = document.createElementNS(NS, "circle");
      const rad = Math.max(size[0], size[1]) / 60;
      Object.entries({ cx: point[0], cy: point[1], r: rad, fill: "#ff4040", stroke: "#fff", "stroke-width": 2,
        "vector-effect": "non-scaling-stroke" }).forEach(([k, v]) => c.setAttribute(k, v));
      marks.appendChild(c);
    }
  }
  draw();

  const toRef = (e) => {
    const rect = img.getBoundingClientRect();
    const x = ((e.clientX - rect.left) / rect.width) * size[0];
    const y = ((e.clientY - rect.top) / rect.height) * size[1];
    return [Math.round(Math.min(Math.max(x, 0), size[0] - 1)), Math.round(Math.min(Math.max(y, 0), size[1] - 1))];
  };
  let start = null;
  img.onpointerdown = (e) => { if (size) { start = toRef(e); img.setPointerCapture(e.pointerId); e.preventDefault(); } };
  img.onpointermove = (e) => {
    if (!start) return;
    const p = toRef(e);
    draw([Math.min(start[0], p[0]), Math.min(start[1], p[1]), Math.max(start[0], p[0]), Math.max(start[1], p[1])]);
  };
  img.onpointerup = (e) => {
    if (!start) return;
    const p = toRef(e);
    const s = start;
    start = null;
    if (Math.abs(p[0] - s[0]) < 4 && Math.abs(p[1] - s[1]) < 4) onPrompt({ point: s });
    else onPrompt({ prompt_box: [Math.min(s[0], p[0]), Math.min(s[1], p[1]), Math.max(s[0], p[0]), Math.max(s[1], p[1])] });
  };
}
