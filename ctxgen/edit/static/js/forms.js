// The scene and instance forms: fields show the YAML's values, typing turns into field edits, and each
// problem `ctxgen validate` reports is shown under the field it names (the server decides what is wrong).

export function numberOrText(text) {
  const t = text.trim();
  if (t === "") return undefined;
  const n = Number(t);
  return Number.isFinite(n) ? n : t;
}

// "42" -> 42, "1, 2" -> [1, 2], "" -> undefined (no seed: random); anything else is sent as typed.
export function parseSeeds(text) {
  const t = text.trim();
  if (t === "") return undefined;
  if (/^-?\d+$/.test(t)) return Number(t);
  const parts = t.replace(/^\[|\]$/g, "").split(/[\s,]+/).filter(Boolean);
  return parts.every((p) => /^-?\d+$/.test(p)) ? parts.map(Number) : t;
}

export function showSeeds(v) {
  if (v === undefined || v === null) return "";
  return Array.isArray(v) ? v.join(", ") : String(v);
}

// The value of one input as scene data (undefined: remove the key, so the default applies).
export function readField(input, form) {
  const kind = input.dataset.kind;
  if (kind === "text") return input.value === "" && input.dataset.optional ? undefined : input.value;
  if (kind === "choice") return input.value === "" ? undefined : input.value;
  if (kind === "int" || kind === "number") return numberOrText(input.value);
  if (kind === "seeds") return parseSeeds(input.value);
  if (kind === "size" || kind === "box") {
    const parts = [...form.querySelectorAll(`[data-kind="${kind}"]`)];
    return parts.map((p) => numberOrText(p.value) ?? p.value);
  }
  return input.value;
}

export function setValue(input, value) {
  if (document.activeElement === input) return; // never move the caret under the user's fingers
  const kind = input.dataset.kind;
  let text;
  if (kind === "seeds") text = showSeeds(value);
  else if (kind === "size" || kind === "box") text = Array.isArray(value) ? value[Number(input.dataset.part)] : "";
  else text = value;
  input.value = text === undefined || text === null ? "" : typeof text === "object" ? JSON.stringify(text) : String(text);
}

export function fillForm(root, data) {
  for (const input of root.querySelectorAll("[data-key]")) setValue(input, data ? data[input.dataset.key] : undefined);
}

// Candidates for an issue's field, most specific first: instances[0].box[2] -> instances[0].box -> instances[0].
function parents(path) {
  const out = [path];
  while (/(\[\d+\]|\.[^.[\]]+)$/.test(path)) {
    path = path.replace(/(\[\d+\]|\.[^.[\]]+)$/, "");
    out.push(path);
  }
  return out;
}

export function placeIssues(root, issues, warnings) {
  for (const msg of root.querySelectorAll(".msg")) msg.remove();
  for (const field of root.querySelectorAll(".field.bad")) field.classList.remove("bad");
  const fields = new Map([...root.querySelectorAll("[data-path]")].map((f) => [f.dataset.path, f]));
  const place = (issue, warn) => {
    const field = parents(issue.path).map((p) => fields.get(p)).find(Boolean);
    if (!field || field.tagName === "TEXTAREA" && field.id === "yaml-text") return;
    const msg = document.createElement("div");
    msg.className = warn ? "msg warn" : "msg";
    msg.textContent = issue.message;
    msg.title = issue.text;
    field.appendChild(msg);
    if (!warn) field.classList.add("bad");
  };
  issues.forEach((i) => place(i, false));
  warnings.forEach((w) => place(w, true));
}

export function instanceOf(path) {
  const m = /^instances\[(\d+)\]/.exec(path);
  return m ? Number(m[1]) : null;
}

const FIELDS = `
  <div class="instance-head"><span class="chip" data-act="chip"></span><span data-act="title"></span>
    <span class="muted" data-act="layer"></span></div>
  <div class="row"><div class="field" data-rel="image"><label>Image</label>
      <div class="pair"><input data-key="image" data-kind="text"><button type="button" data-act="pick-image">Pick…</button></div></div></div>
  <div class="row">
    <div class="field" data-rel="label"><label>Label</label><input data-key="label" data-kind="text" data-optional="1" placeholder="(none)"></div>
    <div class="field" data-rel="z"><label>z (layer)</label><input data-key="z" data-kind="int" type="number" placeholder="auto"></div>
  </div>
  <div class="field" data-rel="phrase"><label>Phrase</label><input data-key="phrase" data-kind="text" data-optional="1" placeholder="(none)"></div>
  <div class="field" data-rel="BOXKEY"><label>Box <span class="muted unit"></span></label>
    <div class="quad"><input data-kind="box" data-part="0" aria-label="x1"><input data-kind="box" data-part="1" aria-label="y1">
      <input data-kind="box" data-part="2" aria-label="x2"><input data-kind="box" data-part="3" aria-label="y2"></div></div>
  <div class="row">
    <div class="field" data-rel="fit"><label>Fit</label><select data-key="fit" data-kind="choice">
      <option value="">scene's</option><option>instance</option><option>distort</option><option>image</option></select></div>
    <div class="field" data-rel="mask"><label>Mask</label><select data-act="mask-mode">
      <option value="alpha">alpha (the cut-out)</option><option value="auto">auto (SAM 2)</option><option value="file">mask file…</option></select></div>
  </div>
  <div class="field" data-rel="mask" data-show="file"><label>Mask file</label><input data-act="mask-file" placeholder="refs/subject_mask.png"></div>
  <div class="field" data-rel="point" data-show="auto"><div class="label">SAM prompt: click the subject, or drag a box around it</div>
    <div class="refpick"><img data-act="ref-image" alt="reference"><svg data-act="ref-marks"></svg></div>
    <div class="row spaced center"><button type="button" data-act="clear-prompt">Whole image</button>
      <span class="muted" data-act="prompt-text"></span></div></div>
  <div class="field" data-rel="prompt_box" data-show="none"></div>
`;

// Build the instance form for instance i; field paths are absolute so validate's messages land on them.
export function buildInstanceForm(root, i, data) {
  const boxKey = data && data.box_norm !== undefined && data.box === undefined ? "box_norm" : "box";
  root.innerHTML = FIELDS.replace("BOXKEY", boxKey);
  root.dataset.index = i;
  root.dataset.boxKey = boxKey;
  for (const f of root.querySelectorAll("[data-rel]")) f.dataset.path = `instances[${i}].${f.dataset.rel}`;
  for (const b of root.querySelectorAll('[data-kind="box"]')) b.dataset.key = boxKey;
  root.querySelector(".unit").textContent = boxKey === "box_norm" ? "(box_norm: fractions 0..1)" : "(x1, y1, x2, y2)";
}

export function maskMode(data) {
  const m = data && data.mask;
  return m === undefined || m === "alpha" ? "alpha" : m === "auto" ? "auto" : "file";
}

export function fillInstanceForm(root, data) {
  fillForm(root, data);
  const mode = maskMode(data);
  const select = root.querySelector('[data-act="mask-mode"]');
  if (document.activeElement !== select) select.value = mode;
  const file = root.querySelector('[data-act="mask-file"]');
  if (document.activeElement !== file) file.value = mode === "file" ? data.mask : "";
  for (const f of root.querySelectorAll("[data-show]")) f.hidden = f.dataset.show !== mode;
}
