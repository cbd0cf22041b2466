// The mclip camera page: streams camera frames to /v1/stream (one JPEG in flight at a time, so the
// answer is always about the newest picture) and draws the top label over the video; single
// images go to POST /v1/classify. Plain browser JavaScript, no build step, nothing from a CDN.
'use strict';

const $ = (id) => document.getElementById(id);

// Presets as Apple's MobileCLIPExplore has them; the server's own presets are added below.
const PRESETS = {
  'desk items': ['laptop', 'keyboard', 'computer mouse', 'coffee mug', 'pen', 'notebook', 'phone', 'headphones', 'plant', 'water bottle'],
  'animals': ['cat', 'dog', 'bird', 'horse', 'fish', 'rabbit', 'cow', 'sheep'],
  'kitchen': ['cup', 'plate', 'fork', 'knife', 'spoon', 'bowl', 'kettle', 'toaster', 'bottle'],
  'vehicles': ['car', 'bicycle', 'motorcycle', 'bus', 'truck', 'train', 'airplane', 'boat', 'rocket'],
  'people and gestures': ['a person waving', 'a person smiling', 'a thumbs up', 'an empty room'],
};

// What the page shows last, for people and for the browser test.
const state = {
  ws: null,
  stream: null,
  inFlight: false,
  sentBlob: null,       // the JPEG whose answer is awaited
  last: null,           // {blob, result}: the newest frame and its answer
  results: 0,
};
window.mclip = state;

function labels() {
  return $('labels').value.split('\n').map((s) => s.trim()).filter((s) => s.length > 0);
}

function config() {
  return {
    labels: labels(),
    prefix: $('prefix').value,
    suffix: $('suffix').value,
    threshold: Number($('threshold').value),
    smoothing: Number($('smoothing').value),
    top_k: Math.max(1, labels().length),
  };
}

function setStatus(text, isError = false) {
  $('status').textContent = text;
  $('status').classList.toggle('error', isError);
}

function updatePreview() {
  const first = labels()[0] || 'class';
  $('preview').textContent = $('prefix').value + first + $('suffix').value;
  $('threshold-value').textContent = Number($('threshold').value).toFixed(2);
  $('smoothing-value').textContent = Number($('smoothing').value).toFixed(2);
}

function showResult(result) {
  const label = result.unknown ? 'unknown' : result.label;
  const percent = Math.round(100 * result.confidence);
  $('current-label').textContent = label;
  $('current-confidence').textContent = percent + '%';
  const body = $('results').querySelector('tbody');
  body.replaceChildren();
  result.top_k.forEach((s, i) => {
    const row = document.createElement('tr');
    if (i === 0) row.className = 'top';
    const name = document.createElement('td');
    name.textContent = s.label;
    const prob = document.createElement('td');
    prob.className = 'num';
    const bar = document.createElement('span');
    bar.className = 'bar';
    bar.style.width = (4 * s.probability) + 'em';
    prob.append(bar, (100 * s.probability).toFixed(1) + '%');
    const cos = document.createElement('td');
    cos.className = 'num';
    cos.textContent = s.cosine.toFixed(3);
    row.append(name, prob, cos);
    body.append(row);
  });
  if (result.inference_ms !== undefined) $('inference').textContent = result.inference_ms.toFixed(1);
  if (result.latency_ms !== undefined) $('latency').textContent = result.latency_ms.toFixed(1);
  if (result.fps !== undefined) $('fps').textContent = result.fps.toFixed(1);
  if (result.dropped !== undefined) $('dropped').textContent = result.dropped;
  drawOverlay(label + ' ' + percent + '%', result.unknown);
}

function drawOverlay(text, unknown) {
  const canvas = $('overlay');
  const rect = canvas.getBoundingClientRect();
  canvas.width = rect.width * devicePixelRatio;
  canvas.height = rect.height * devicePixelRatio;
  const ctx = canvas.getContext('2d');
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const size = Math.round(canvas.height / 12);
  ctx.font = `bold ${size}px system-ui, sans-serif`;
  const pad = size / 3;
  const width = ctx.measureText(text).width + 2 * pad;
  ctx.fillStyle = 'rgba(0, 0, 0, 0.6)';
  ctx.fillRect(pad, pad, width, size + 2 * pad);
  ctx.fillStyle = unknown ? '#ccc' : '#fff';
  ctx.textBaseline = 'top';
  ctx.fillText(text, 2 * pad, 2 * pad);
}

async function loadModel() {
  try {
    const models = await (await fetch('/v1/models')).json();
    const m = models.data[0];
    $('model').textContent = `${m.id} · ${m.architecture} · ${m.precision} · ${m.backend}`;
  } catch (e) {
    setStatus('server unreachable', true);
  }
}

async function loadPresets() {
  const select = $('preset');
  const all = { ...PRESETS };
  try {
    const server = await (await fetch('/v1/presets')).json();
    for (const [name, list] of Object.entries(server)) if (!(name in all)) all[name] = list;
  } catch (e) { /* the built-in presets are enough */ }
  const custom = document.createElement('option');
  custom.value = '';
  custom.textContent = '(custom)';
  select.append(custom);
  for (const name of Object.keys(all)) {
    const option = document.createElement('option');
    option.value = name;
    option.textContent = `${name} (${all[name].length})`;
    select.append(option);
  }
  select.addEventListener('change', () => {
    if (!select.value) return;
    $('labels').value = all[select.value].join('\n');
    settingsChanged();
  });
  select.value = 'desk items';
  $('labels').value = all['desk items'].join('\n');
}

async function listCameras() {
  const select = $('camera');
  const devices = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === 'videoinput');
  const previous = select.value;
  select.replaceChildren();
  devices.forEach((d, i) => {
    const option = document.createElement('option');
    option.value = d.deviceId;
    option.textContent = d.label || `camera ${i + 1}`;
    select.append(option);
  });
  if (previous) select.value = previous;
}

function wsUrl() {
  return (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/v1/stream';
}

function openStream() {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl());
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => ws.send(JSON.stringify(config()));
    ws.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.type === 'config') {
        resolve(ws);
      } else if (message.type === 'result') {
        state.inFlight = false;
        state.last = { blob: state.sentBlob, result: message };
        state.results += 1;
        showResult(message);
        sendFrame();
      } else if (message.type === 'error') {
        setStatus(message.message, true);
      }
    };
    ws.onerror = () => reject(new Error('stream failed'));
    ws.onclose = () => {
      state.inFlight = false;
      if (state.ws === ws) {
        state.ws = null;
        if (state.stream) setStatus('stream closed', true);
      }
    };
  });
}

// Sends the current video picture as a JPEG, unless one is already waiting for its answer.
function sendFrame() {
  const video = $('video');
  if (!state.stream || !state.ws || state.ws.readyState !== WebSocket.OPEN || state.inFlight) return;
  if (video.videoWidth === 0) {
    requestAnimationFrame(sendFrame);
    return;
  }
  const scale = Math.min(1, 640 / video.videoWidth);
  const canvas = document.createElement('canvas');
  canvas.width = Math.round(video.videoWidth * scale);
  canvas.height = Math.round(video.videoHeight * scale);
  canvas.getContext('2d').drawImage(video, 0, 0, canvas.width, canvas.height);
  state.inFlight = true;
  canvas.toBlob((blob) => {
    if (!blob || !state.ws || state.ws.readyState !== WebSocket.OPEN) {
      state.inFlight = false;
      return;
    }
    state.sentBlob = blob;
    state.ws.send(blob);
  }, 'image/jpeg', 0.85);
}

async function start() {
  try {
    stop();
    const id = $('camera').value;
    state.stream = await navigator.mediaDevices.getUserMedia({
      video: id ? { deviceId: { exact: id }, width: { ideal: 640 } } : { width: { ideal: 640 } },
      audio: false,
    });
    const video = $('video');
    video.srcObject = state.stream;
    video.hidden = false;
    $('still').hidden = true;
    $('drop-hint').hidden = true;
    await video.play();
    await listCameras();
    state.ws = await openStream();
    $('start').disabled = true;
    $('stop').disabled = false;
    setStatus('live');
    sendFrame();
  } catch (e) {
    setStatus(e.message || String(e), true);
    stop();
  }
}

function stop() {
  if (state.ws) {
    const ws = state.ws;
    state.ws = null;
    ws.close();
  }
  if (state.stream) {
    state.stream.getTracks().forEach((t) => t.stop());
    state.stream = null;
  }
  state.inFlight = false;
  $('start').disabled = false;
  $('stop').disabled = true;
}

// A single image: POST /v1/classify with the current settings.
async function classifyFile(file) {
  stop();
  const still = $('still');
  still.src = URL.createObjectURL(file);
  still.hidden = false;
  $('video').hidden = true;
  $('drop-hint').hidden = true;
  const c = config();
  const form = new FormData();
  form.append('image', file, file.name || 'image');
  form.append('labels', JSON.stringify(c.labels));
  form.append('prefix', c.prefix);
  form.append('suffix', c.suffix);
  form.append('threshold', String(c.threshold));
  form.append('top_k', String(c.top_k));
  setStatus('classifying…');
  try {
    const response = await fetch('/v1/classify', { method: 'POST', body: form });
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.error ? answer.error.message : response.statusText);
    state.last = { blob: file, result: answer };
    state.results += 1;
    showResult(answer);
    setStatus('image');
  } catch (e) {
    setStatus(e.message || String(e), true);
  }
}

let lastImage = null;
let settingsTimer = null;
// Class list or prompt edited: the stream is reconfigured (or the image classified again).
function settingsChanged() {
  updatePreview();
  clearTimeout(settingsTimer);
  settingsTimer = setTimeout(() => {
    if (labels().length === 0) return;
    if (state.ws && state.ws.readyState === WebSocket.OPEN) {
      state.ws.send(JSON.stringify(config()));
    } else if (lastImage) {
      classifyFile(lastImage);
    }
  }, 300);
}

function init() {
  ['labels', 'prefix', 'suffix', 'threshold', 'smoothing'].forEach((id) => $(id).addEventListener('input', () => {
    if (id === 'labels') $('preset').value = '';
    settingsChanged();
  }));
  $('start').addEventListener('click', start);
  $('stop').addEventListener('click', () => { stop(); setStatus('stopped'); });
  $('camera').addEventListener('change', () => { if (state.stream) start(); });
  $('file').addEventListener('change', () => {
    if ($('file').files.length) {
      lastImage = $('file').files[0];
      classifyFile(lastImage);
    }
  });
  const stage = $('stage');
  stage.addEventListener('dragover', (e) => { e.preventDefault(); stage.classList.add('dragging'); });
  stage.addEventListener('dragleave', () => stage.classList.remove('dragging'));
  stage.addEventListener('drop', (e) => {
    e.preventDefault();
    stage.classList.remove('dragging');
    if (e.dataTransfer.files.length) {
      lastImage = e.dataTransfer.files[0];
      classifyFile(lastImage);
    }
  });
  if (!navigator.mediaDevices) {
    setStatus('no camera access: open this page over https or on localhost', true);
    $('start').disabled = true;
  } else {
    listCameras().catch(() => {});
  }
  loadModel();
  loadPresets().then(updatePreview);
}

init();
