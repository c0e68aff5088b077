// anyres serve: the page. Plain JS over the JSON API (see the README, "Web app"); nothing is fetched from elsewhere.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  models: null,   // GET /api/models
  files: [],      // picked, not yet submitted
  jobs: [],       // {id, name, file, status, progress, error, record, resultUrl, originalUrl, row}
  selected: null, // the job shown in the viewer
  view: { x: 0, y: 0, z: 1, w: 0, h: 0 },
};

// ---- models and the form ---------------------------------------------------------------------------

async function loadModels() {
  const r = await fetch("/api/models");
  state.models = await r.json();
  fillModels();
}

function fillModels() {
  const task = $("task").value;
  const select = $("model");
  select.innerHTML = "";
  for (const m of state.models[task]) {
    const option = document.createElement("option");
    option.value = m.name;
    option.textContent = m.default ? `${m.name} (default)` : m.name;
    option.dataset.description = m.description;
    select.appendChild(option);
  }
  describeModel();
  $("size-fields").disabled = task === "enhance";
  $("size-fields").style.display = task === "enhance" ? "none" : "";
}

function describeModel() {
  const option = $("model").selectedOptions[0];
  $("model-description").textContent = option ? option.dataset.description : "";
}

function formFields() {
  const fields = { task: $("task").value, model: $("model").value };
  if (fields.task !== "enhance") {
    if ($("by-scale").checked) {
      fields.scale = $("scale").value;
    } else {
      if ($("width").value) fields.width = $("width").value;
      if ($("height").value) fields.height = $("height").value;
    }
    if ($("seed").value !== "") fields.seed = $("seed").value;
  }
  return fields;
}

function pick(files) {
  state.files = Array.from(files).filter((f) => f.size > 0);
  const n = state.files.length;
  $("drop-text").textContent = n === 0 ? "Drop images here, or click to pick them"
    : n === 1 ? state.files[0].name : `${n} images: ${state.files.map((f) => f.name).join(", ")}`;
  $("run").disabled = n === 0;
  $("message").textContent = "";
}

// ---- jobs --------------------------------------------------------------------------------------------

async function run() {
  $("message").textContent = "";
  const fields = formFields();
  const files = state.files;
  pick([]);
  $("file").value = "";
  for (const file of files) {
    const body = new FormData();
    body.append("file", file, file.name);
    for (const [k, v] of Object.entries(fields)) body.append(k, v);
    let r, answer;
    try {
      r = await fetch("/api/jobs", { method: "POST", body });
      answer = await r.json();
    } catch (err) {
      $("message").textContent = `${file.name}: ${err}`;
      continue;
    }
    if (!r.ok) {
      $("message").textContent = `${file.name}: ${answer.error}`;
      continue;
    }
    const job = { id: answer.id, name: file.name, file, status: "queued", progress: 0, error: null };
    job.originalUrl = URL.createObjectURL(file);
    state.jobs.unshift(job);
    addRow(job);
    if (!state.selected || state.selected.status !== "done") select(job);
    poll(job);
  }
}

function addRow(job) {
  const li = document.createElement("li");
  li.innerHTML = '<span class="state"></span><div class="name"></div><progress max="1" value="0"></progress>' +
    '<div class="job-error"></div><button type="button" class="cancel">Cancel</button>';
  li.querySelector(".name").textContent = job.name;
  li.querySelector(".cancel").addEventListener("click", (e) => { e.stopPropagation(); cancel(job); });
  li.addEventListener("click", () => select(job));
  li.dataset.id = job.id;
  job.row = li;
  $("jobs").prepend(li);
  drawRow(job);
}

function drawRow(job) {
  const li = job.row;
  li.querySelector(".state").textContent =
    job.status === "running" ? `running ${Math.round(job.progress * 100)}%` : job.status;
  li.querySelector("progress").value = job.progress;
  li.querySelector(".job-error").textContent = job.error || "";
  li.querySelector(".cancel").style.display = job.status === "queued" || job.status === "running" ? "" : "none";
  li.classList.toggle("selected", state.selected === job);
  li.dataset.status = job.status;
}

async function poll(job) {
  while (job.status === "queued" || job.status === "running") {
    await new Promise((resolve) => setTimeout(resolve, 300));
    let view;
    try {
      view = await (await fetch(`/api/jobs/${job.id}`)).json();
    } catch (err) {
      continue;
    }
    if (view.error && !view.status) { job.status = "failed"; job.error = view.error; break; }
    Object.assign(job, view);
    drawRow(job);
  }
  job.record = await (await fetch(`/api/jobs/${job.id}/record`)).json();
  if (job.status === "done") {
    const r = await fetch(`/api/jobs/${job.id}/result`); // the server drops its copy once sent
    if (r.ok) {
      job.resultUrl = URL.createObjectURL(await r.blob());
    } else {
      job.error = (await r.json()).error;
    }
  }
  drawRow(job);
  if (state.selected === job) show(job);
}

async function cancel(job) {
  const r = await fetch(`/api/jobs/${job.id}`, { method: "DELETE" });
  if (r.ok) Object.assign(job, await r.json());
  drawRow(job);
}

function select(job) {
  state.selected = job;
  for (const j of state.jobs) drawRow(j);
  show(job);
}

// ---- the before / after viewer -------------------------------------------------------------------------

function show(job) {
  const record = job.record || { input: job.name, status: job.status };
  $("record").textContent = JSON.stringify(record, null, 2);
  const download = $("download");
  const stage = $("stage");
  if (!job.resultUrl) {
    download.classList.add("disabled");
    download.removeAttribute("href");
    stage.style.display = "none";
    $("divider").style.display = "none";
    $("viewer-note").style.display = "";
    $("viewer-note").textContent = job.status === "failed" ? job.error
      : job.status === "cancelled" ? "cancelled" : `${job.name}: ${job.status}…`;
    return;
  }
  download.href = job.resultUrl;
  download.download = (job.record && job.record.output) || "result";
  download.classList.remove("disabled");
  const after = $("after");
  const before = $("before");
  after.onload = () => {
    state.view.w = after.naturalWidth;
    state.view.h = after.naturalHeight;
    stage.style.width = `${state.view.w}px`;
    stage.style.height = `${state.view.h}px`;
    stage.style.display = "block";
    $("divider").style.display = "block";
    $("viewer-note").style.display = "none";
    fit();
  };
  after.onerror = () => {
    stage.style.display = "none";
    $("viewer-note").style.display = "";
    $("viewer-note").textContent = "This browser cannot show this format (TIFF?); the download has the result.";
  };
  before.onerror = () => { before.removeAttribute("src"); };
  before.src = job.originalUrl;
  after.src = job.resultUrl;
}

function draw() {
  const v = state.view;
  const stage = $("stage");
  stage.style.transform = `translate(${v.x}px, ${v.y}px) scale(${v.z})`;
  stage.classList.toggle("pixelated", v.z >= 2);
  $("zoom-level").textContent = `${Math.round(v.z * 100)}%`;
  // The divider stays where the slider puts it on screen; the result shows to its right.
  const width = $("viewer").clientWidth;
  const at = (Number($("slider").value) / 100) * width;
  $("divider").style.left = `${at - 1}px`;
  const inImage = v.w ? ((at - v.x) / v.z / v.w) * 100 : 50;
  $("after").style.clipPath = `inset(0 0 0 ${Math.min(100, Math.max(0, inImage))}%)`;
}

function fit() {
  const v = state.view;
  const box = $("viewer");
  if (!v.w) return;
  v.z = Math.min(box.clientWidth / v.w, box.clientHeight / v.h, 1e6);
  v.x = (box.clientWidth - v.w * v.z) / 2;
  v.y = (box.clientHeight - v.h * v.z) / 2;
  draw();
}

function zoomAt(factor, cx, cy) {
  const v = state.view;
  const z = Math.min(64, Math.max(0.02, v.z * factor));
  v.x = cx - ((cx - v.x) * z) / v.z;
  v.y = cy - ((cy - v.y) * z) / v.z;
  v.z = z;
  draw();
}

function oneToOne() {
  const box = $("viewer");
  zoomAt(1 / state.view.z, box.clientWidth / 2, box.clientHeight / 2);
}

function setupViewer() {
  const box = $("viewer");
  box.addEventListener("wheel", (e) => {
    e.preventDefault();
    const r = box.getBoundingClientRect();
    zoomAt(Math.exp(-e.deltaY * 0.0015), e.clientX - r.left, e.clientY - r.top);
  }, { passive: false });
  let drag = null;
  box.addEventListener("pointerdown", (e) => {
    drag = { x: e.clientX, y: e.clientY, vx: state.view.x, vy: state.view.y };
    box.setPointerCapture(e.pointerId);
    box.classList.add("dragging");
  });
  box.addEventListener("pointermove", (e) => {
    if (!drag) return;
    state.view.x = drag.vx + e.clientX - drag.x;
    state.view.y = drag.vy + e.clientY - drag.y;
    draw();
  });
  const stop = () => { drag = null; box.classList.remove("dragging"); };
  box.addEventListener("pointerup", stop);
  box.addEventListener("pointercancel", stop);
  $("slider").addEventListener("input", draw);
  $("zoom-in").addEventListener("click", () => zoomAt(1.5, box.clientWidth / 2, box.clientHeight / 2));
  $("zoom-out").addEventListener("click", () => zoomAt(1 / 1.5, box.clientWidth / 2, box.clientHeight / 2));
  $("zoom-fit").addEventListener("click", fit);
  $("zoom-one").addEventListener("click", oneToOne);
  window.addEventListener("resize", draw);
}

// ---- wiring ----------------------------------------------------------------------------------------------

function setup() {
  $("task").addEventListener("change", fillModels);
  $("model").addEventListener("change", describeModel);
  $("file").addEventListener("change", (e) => pick(e.target.files));
  const drop = $("drop");
  for (const name of ["dragenter", "dragover"]) {
    drop.addEventListener(name, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  for (const name of ["dragleave", "drop"]) {
    drop.addEventListener(name, () => drop.classList.remove("over"));
  }
  drop.addEventListener("drop", (e) => { e.preventDefault(); pick(e.dataTransfer.files); });
  for (const id of ["width", "height"]) $(id).addEventListener("input", () => { $("by-size").checked = true; });
  $("scale").addEventListener("input", () => { $("by-scale").checked = true; });
  $("run").addEventListener("click", run);
  setupViewer();
  loadModels().catch((err) => { $("message").textContent = `cannot list the models: ${err}`; });
}

setup();
