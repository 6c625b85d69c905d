"""The one page GET / serves: self-contained HTML, CSS and JavaScript, no external URL."""

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>skderm: try a model</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 52rem; color: #222; }
#drop { border: 2px dashed #888; border-radius: 8px; padding: 2rem; text-align: center; }
#drop.over { background: #eef4ff; border-color: #36c; }
#fields label { display: inline-block; margin: .5rem 1rem .5rem 0; }
#result { display: flex; gap: 2rem; flex-wrap: wrap; margin-top: 1.5rem; }
table { border-collapse: collapse; }
td { padding: 2px 8px; }
.bar { background: #36c; height: 12px; }
.decided td { font-weight: bold; }
#overlay { width: 256px; image-rendering: auto; border: 1px solid #ccc; }
#error { color: #b00; white-space: pre-wrap; }
.note { color: #555; font-size: .9rem; }
</style>
</head>
<body>
<h1>Try a skderm model</h1>
<p class="note" id="model">Loading the model description...</p>
<div id="drop">
  <p>Drop a lesion image here, or choose one:</p>
  <input type="file" id="file" accept="image/*">
</div>
<div id="fields"></div>
<p id="error" role="alert"></p>
<div id="result" hidden>
  <div>
    <p>Decision: <strong id="label"></strong></p>
    <p class="note" id="decided"></p>
    <table id="probs"><tbody></tbody></table>
    <p class="note" id="metanote"></p>
  </div>
  <div>
    <img id="overlay" alt="Grad-CAM saliency over the image">
    <p class="note" id="saliency"></p>
  </div>
</div>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
let numeric = [];
let maxBytes = Infinity;

function show(error) { $("error").textContent = error || ""; }

async function describe() {
  const info = await (await fetch("/health")).json();
  numeric = info.numeric_metadata || [];
  maxBytes = info.max_upload_bytes || Infinity;
  $("model").textContent = info.model + " (" + info.kind + "), classes: " +
    info.classes.join(", ");
  const categories = info.categories || {};
  for (const name of info.metadata_columns || []) {
    const label = document.createElement("label");
    let input;
    if (categories[name]) {
      input = document.createElement("select");
      for (const value of ["", ...categories[name]]) {
        input.add(new Option(value || "unknown", value));
      }
    } else {
      input = document.createElement("input");
      input.type = numeric.includes(name) ? "number" : "text";
      input.placeholder = "unknown";
    }
    input.name = name;
    label.append(name + " ", input);
    $("fields").append(label);
  }
}

function render(answer) {
  const body = $("probs").tBodies[0];
  body.replaceChildren();
  answer.classes.forEach((name, i) => {
    const p = answer.probabilities[i];
    const row = body.insertRow();
    if (String(name) === String(answer.label)) row.className = "decided";
    row.insertCell().textContent = name;
    row.insertCell().textContent = (100 * p).toFixed(1) + " %";
    const bar = document.createElement("div");
    bar.className = "bar";
    bar.style.width = Math.round(200 * p) + "px";
    row.insertCell().append(bar);
  });
  $("label").textContent = answer.label;
  $("decided").textContent = "Decided by " + answer.decided_by + ".";
  $("metanote").textContent = answer.metadata_note || "";
  const img = $("overlay");
  img.hidden = !answer.saliency_png_base64;
  if (answer.saliency_png_base64) img.src = "data:image/png;base64," + answer.saliency_png_base64;
  $("saliency").textContent = answer.saliency || "";
  $("result").hidden = false;
}

async function predict(file) {
  if (file.size > maxBytes) {  // the server would refuse it (413) before reading it
    $("result").hidden = true;
    show(file.name + " is " + file.size + " bytes, more than the server takes (" +
         maxBytes + " bytes); choose a smaller image");
    return;
  }
  show("Predicting " + file.name + "...");
  const form = new FormData();
  form.append("image", file, file.name);
  for (const input of $("fields").querySelectorAll("input, select")) form.append(input.name, input.value);
  let response, answer;
  try {
    response = await fetch("/predict", { method: "POST", body: form });
    answer = await response.json();
  } catch (err) {
    show("The server did not answer: " + err);
    return;
  }
  if (!response.ok) { $("result").hidden = true; show(answer.error); return; }
  show("");
  render(answer);
}

$("file").addEventListener("change", (e) => { if (e.target.files[0]) predict(e.target.files[0]); });
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  if (e.dataTransfer.files[0]) predict(e.dataTransfer.files[0]);
});
describe().catch((err) => show("Could not read /health: " + err));
</script>
</body>
</html>
"""
