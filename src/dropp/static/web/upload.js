// The web app's uploads: each file straight to storage, never through Dropp's API process.
// A file up to PART_SIZE * 2 goes in one POST with its SHA-256 declared; a larger one in
// parts of PART_SIZE, PARTS_AT_ONCE at a time, each signed for its own SHA-256 (storage
// refuses other bytes; the server makes the file's content hash from the parts' hashes).
// A file that fails, or that the person cancels, is cancelled on the server too.
(() => {
  "use strict";
  const PART_SIZE = 8 * 1024 * 1024;
  const PARTS_AT_ONCE = 4;
  const box = document.getElementById("uploads");
  if (!box) return;
  const folder = box.dataset.folder;
  const csrf = box.dataset.csrf;
  const list = document.getElementById("upload-list");
  const total = document.getElementById("upload-total");
  const pickers = [document.getElementById("pick-files"), document.getElementById("pick-folder")];
  const zone = document.getElementById("drop-zone");
  box.hidden = false;

  let token = null;
  const accessToken = async () => {
    if (token && token.until > Date.now()) return token.value;
    const form = new FormData();
    form.append("csrf", csrf);
    const answer = await fetch("/app/token", {method: "POST", body: form});
    if (!answer.ok) throw new Error(answer.status === 401 ? "your session has ended: sign in again" : "the server refused: " + answer.status);
    const body = await answer.json();
    token = {value: body.access_token, until: Date.now() + (body.expires_in - 30) * 1000};
    return token.value;
  };

  // `signal`: a cancelled upload's requests stop at once, and none starts after it.
  const api = async (method, path, body, signal) => {
    const answer = await fetch(path, {
      method,
      headers: {"Authorization": "Bearer " + await accessToken(), "Content-Type": "application/json"},
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
    if (answer.status === 204) return null;
    let parsed = null;
    try { parsed = await answer.json(); } catch { /* not JSON */ }
    if (!answer.ok) throw new Error((parsed && parsed.detail) || ("the server answered " + answer.status));
    return parsed;
  };

  const hex = (buffer) => Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
  const sha256 = async (blob) => hex(await crypto.subtle.digest("SHA-256", await blob.arrayBuffer()));

  // One request to storage, its progress told to `sent(bytes)`; resolves with the request.
  const send = (method, url, body, headers, sent, job) => new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    job.requests.add(request);
    request.open(method, url);
    for (const [name, value] of Object.entries(headers || {})) {
      if (!["content-length", "host"].includes(name.toLowerCase())) request.setRequestHeader(name, value);
    }
    request.upload.onprogress = (event) => sent(event.loaded);
    request.onload = () => {
      job.requests.delete(request);
      if (request.status < 300) resolve(request);
      else reject(new Error("storage refused the bytes (" + request.status + ")"));
    };
    request.onerror = () => { job.requests.delete(request); reject(new Error("the connection to storage failed")); };
    request.onabort = () => { job.requests.delete(request); reject(new Error("cancelled")); };
    request.send(body);
  });

  const single = async (job) => {
    const started = await api("POST", "/upload/", {
      filename: job.name, folder: job.folder, size: job.file.size, sha256: await sha256(job.file),
    }, job.signal);
    job.started = started;
    if (started.status === "complete") return;  // the file holds these bytes already
    const form = new FormData();
    for (const [name, value] of Object.entries(started.upload.fields)) form.append(name, value);
    form.append("file", job.file);
    await send("POST", started.upload.url, form, null, (n) => job.progress(n), job);
    await api("POST", "/upload/" + started.file_id + "/complete", {upload_id: started.upload_id}, job.signal);
  };

  const multipart = async (job) => {
    const started = await api("POST", "/upload/", {
      filename: job.name, folder: job.folder, size: job.file.size, multipart: true,
    }, job.signal);
    job.started = started;
    const count = started.upload.part_count, size = started.upload.part_size;
    const done = new Array(count).fill(0);
    let next = 1;
    const worker = async () => {
      while (next <= count && !job.cancelled) {
        const number = next++;
        const piece = job.file.slice((number - 1) * size, Math.min(number * size, job.file.size));
        const signed = await api("POST", "/upload/" + started.file_id + "/parts", {
          upload_id: started.upload_id, part_numbers: [number], sha256: {[number]: await sha256(piece)},
        }, job.signal);
        const part = signed.parts[0];
        await send("PUT", part.url, piece, part.headers, (n) => { done[number - 1] = n; job.progress(done.reduce((a, b) => a + b, 0)); }, job);
        done[number - 1] = piece.size;
      }
    };
    // Every sender settles before the upload goes on or is cancelled: none may still be
    // asking for a URL when the server drops the upload.
    const senders = await Promise.allSettled(Array.from({length: Math.min(PARTS_AT_ONCE, count)}, worker));
    const failed = senders.find((sender) => sender.status === "rejected");
    if (failed) throw failed.reason;
    if (job.cancelled) throw new Error("cancelled");
    await api("POST", "/upload/" + started.file_id + "/complete", {upload_id: started.upload_id}, job.signal);
  };

  const jobs = [];
  const showTotal = () => {
    const size = jobs.reduce((a, j) => a + j.file.size, 0) || 1;
    total.value = jobs.reduce((a, j) => a + j.sent, 0) / size;
    total.hidden = false;
  };

  const upload = async (file, relative) => {
    const parts = (relative || file.name).split("/");
    const name = parts.pop();
    const inner = parts.join("/");
    const item = document.createElement("li");
    const label = document.createElement("span");
    const bar = document.createElement("progress");
    const cancel = document.createElement("button");
    label.textContent = (inner ? inner + "/" : "") + name;
    bar.max = 1;
    bar.value = 0;
    bar.setAttribute("aria-label", "Uploading " + label.textContent);
    cancel.type = "button";
    cancel.className = "secondary";
    cancel.textContent = "Cancel " + name;
    item.append(label, " ", bar, " ", cancel);
    list.append(item);
    const job = {
      file, name, folder: inner ? folder.replace(/\/$/, "") + "/" + inner : folder,
      sent: 0, requests: new Set(), cancelled: false, started: null, stop: new AbortController(),
      get signal() { return this.stop.signal; },
      progress: (n) => { job.sent = n; bar.value = file.size ? n / file.size : 1; showTotal(); },
    };
    jobs.push(job);
    cancel.addEventListener("click", () => {
      job.cancelled = true;
      job.stop.abort();
      for (const request of job.requests) request.abort();
    });
    const say = (text, failed) => {
      bar.remove();
      cancel.remove();
      label.textContent += ": " + text;
      item.setAttribute("role", failed ? "alert" : "status");
      if (failed) item.className = "error";
    };
    try {
      await (file.size > 2 * PART_SIZE ? multipart(job) : single(job));
      job.progress(file.size);
      say("uploaded");
      return true;
    } catch (error) {
      if (job.started && job.started.status !== "complete") {
        try { await api("DELETE", "/upload/" + job.started.file_id + "?upload_id=" + job.started.upload_id); } catch { /* said below */ }
      }
      say(job.cancelled ? "cancelled" : error.message, !job.cancelled);
      return false;
    }
  };

  const uploadAll = async (entries) => {
    const done = document.getElementById("upload-done");
    done.hidden = true;
    const results = [];
    for (const [file, relative] of entries) results.push(await upload(file, relative));
    if (results.length && results.every(Boolean)) done.hidden = false;
  };

  for (const picker of pickers) {
    picker.addEventListener("change", () => {
      const entries = Array.from(picker.files, (f) => [f, f.webkitRelativePath || ""]);
      picker.value = "";
      uploadAll(entries);
    });
  }
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    uploadAll(Array.from(event.dataTransfer.files, (f) => [f, ""]));
  });
})();
