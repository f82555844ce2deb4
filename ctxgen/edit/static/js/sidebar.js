// The sidebar: the instance list, the problems `ctxgen validate` reports, and the selected instance's form.

import { buildInstanceForm, fillInstanceForm, instanceOf, placeIssues, readField } from "./forms.js";
import { pickFromFolder } from "./files.js";
import { attachRefPick } from "./refpick.js";
import { $, S, boxKey, edit, hooks, instances, later, setOp } from "./state.js";

export function instanceList() {
  const list = $("instance-list");
  list.replaceChildren();
  const order = S.preview && S.preview.ok ? S.preview.order : [];
  const bad = new Set(S.scene.issues.map((i) => instanceOf(i.path)));
  instances().forEach((inst, i) => {
    const li = document.createElement("li");
    li.classList.toggle("selected", i === S.selected);
    li.classList.toggle("bad", bad.has(i));
    const chip = document.createElement("span");
    chip.className = "chip";
    chip.style.background = S.info.palette[i % S.info.palette.length];
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = `#${i} ${(inst && inst.label) || ""} — ${(inst && inst.image) || "?"}`;
    const layer = document.createElement("span");
    layer.className = "layer";
    layer.textContent = order.includes(i) ? `layer ${order.indexOf(i)}` : "";
    li.append(chip, name, layer);
    li.addEventListener("click", () => { select(i); hooks.showTab("instance"); });
    list.appendChild(li);
  });
}

export function problems() {
  const box = $("problems");
  const { issues, warnings } = S.scene;
  box.hidden = !issues.length && !warnings.length;
  box.replaceChildren();
  if (box.hidden) return;
  const head = document.createElement("h4");
  head.textContent = issues.length ? `${issues.length} problem${issues.length > 1 ? "s" : ""} (as ctxgen validate prints them)`
    : `${warnings.length} warning${warnings.length > 1 ? "s" : ""}`;
  box.appendChild(head);
  for (const [list, warn] of [[issues, false], [warnings, true]]) {
    for (const issue of list) {
      const b = document.createElement("button");
      b.className = warn ? "issue warn" : "issue";
      b.textContent = `${issue.line}:${issue.col} ${issue.path}: ${issue.message}`;
      b.title = issue.text;
      b.addEventListener("click", () => goTo(issue));
      box.appendChild(b);
    }
  }
}

export function goTo(issue) {
  const i = instanceOf(issue.path);
  if (i !== null) { select(i); hooks.showTab("instance"); return; }
  hooks.showTab(["yaml", "file", "scene"].includes(issue.path) ? "yaml" : "scene");
  if (S.tab === "yaml") {
    const ta = $("yaml-text");
    const lines = ta.value.split("\n");
    const at = lines.slice(0, issue.line - 1).reduce((n, l) => n + l.length + 1, 0) + issue.col - 1;
    ta.focus();
    ta.setSelectionRange(at, at);
  }
}

// ---- the instance panel --------------------------------------------------------------------------------
export function instancePanel() {
  const form = $("instance-form");
  const inst = S.selected === null ? null : instances()[S.selected];
  $("no-selection").hidden = inst !== null && inst !== undefined;
  form.hidden = !inst;
  if (!inst) return;
  if (form.dataset.index !== String(S.selected) || form.dataset.boxKey !== boxKey(inst)) buildInstanceForm(form, S.selected, inst);
  fillInstanceForm(form, inst);
  form.querySelector('[data-act="chip"]').style.background = S.info.palette[S.selected % S.info.palette.length];
  form.querySelector('[data-act="title"]').textContent = `Instance #${S.selected}${inst.label ? ` · ${inst.label}` : ""}`;
  const order = S.preview && S.preview.ok ? S.preview.order : [];
  form.querySelector('[data-act="layer"]').textContent = order.includes(S.selected)
    ? `layer ${order.indexOf(S.selected)} of ${order.length} (0 = bottom)` : "";
  for (const input of form.querySelectorAll("input, select, button")) input.disabled = S.readOnly;
  if (inst.mask === "auto" && S.scene.valid) {
    const seen = `${S.scene.version}-${S.preview && S.preview.ok ? S.preview.key : "none"}`; // masks appear with previews
    attachRefPick(form, S.selected, inst, seen, (prompt) => {
      const path = ["instances", S.selected];
      edit(prompt.point ? [setOp([...path, "point"], prompt.point), setOp([...path, "prompt_box"])]
        : [setOp([...path, "prompt_box"], prompt.prompt_box), setOp([...path, "point"])]);
    });
  }
}

export function select(i) {
  S.selected = i;
  hooks.canvas.select(i);
  instanceList();
  instancePanel();
  placeIssues(document.querySelector(".side"), S.scene.issues, S.scene.warnings);
  for (const b of document.querySelectorAll("#layer-tools button")) b.disabled = S.readOnly || i === null;
}

export function onInstanceInput(e) {
  const input = e.target;
  const i = S.selected;
  if (i === null || S.readOnly) return;
  const form = $("instance-form");
  const path = ["instances", i];
  if (input.dataset.act === "mask-mode") {
    const v = input.value;
    const ops = v === "alpha" ? [setOp([...path, "mask"]), setOp([...path, "point"]), setOp([...path, "prompt_box"])]
      : v === "auto" ? [setOp([...path, "mask"], "auto")] : [setOp([...path, "mask"], "")];
    edit(ops);
  } else if (input.dataset.act === "mask-file") {
    later(`mask-${i}`, 450, () => edit([setOp([...path, "mask"], input.value)]));
  } else if (input.dataset.key) {
    const key = input.dataset.key;
    const immediate = input.tagName === "SELECT";
    later(`${i}.${key}`, immediate ? 0 : 350, () => edit([setOp([...path, key], readField(input, form))]));
  }
}

export async function onInstanceClick(e) {
  const act = e.target.dataset && e.target.dataset.act;
  const i = S.selected;
  if (i === null || S.readOnly) return;
  if (act === "pick-image") {
    const picked = await pickFromFolder();
    if (picked) edit([setOp(["instances", i, "image"], picked)]);
  } else if (act === "clear-prompt") {
    edit([setOp(["instances", i, "point"]), setOp(["instances", i, "prompt_box"])]);
  }
}

