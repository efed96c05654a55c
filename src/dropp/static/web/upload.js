// The web app's uploads: each file straight to storage, never through Dropp's API process.
// A file up to PART_SIZE * 2 goes in one POST with its SHA-256 declared; a larger one in
// parts of PART_SIZE, PARTS_AT_ONCE at a time, each signed for its own SHA-256 (storage
// refuses other bytes; the server makes the file's content hash from the parts' hashes).
// A file that fails, or that the person cancels, is cancelled on the server too. A large
// file's upload outlives the page: left or reloaded, it is listed when the page comes back,
// and the same file picked again sends only the parts storage does not hold yet.
(() => {
  "use strict";
  const PART_SIZE = 8 * 1024 * 1024;
  const PARTS_AT_ONCE = 4;
  const box = document.getElementById("uploads");
  if (!box) return;
  const folder = box.dataset.folder;
  const share = box.dataset.share || null;
  const csrf = box.dataset.csrf;
  const list = document.getElementById("upload-list");
  const total = document.getElementById("upload-total");
  const pickers = [document.getElementById("pick-files"), document.getElementById("pick-folder")];
  const zone = document.getElementById("drop-zone");
  box.hidden = false;

  const api = window.droppApi(csrf);

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
      if (request.status < 300) return resolve(request);
      const failure = new Error("storage refused the bytes (" + request.status + ")");
      failure.transient = request.status >= 500;
      reject(failure);
    };
    request.onerror = () => {
      job.requests.delete(request);
      const failure = new Error("the connection to storage failed");
      failure.transient = true;
      reject(failure);
    };
    request.onabort = () => { job.requests.delete(request); reject(new Error("cancelled")); };
    request.send(body);
  });

  // `attempt()` again after a failure that may pass (the network, or a server answering 5xx),
  // after 1, 2 and 4 seconds; a refusal, or a cancel, ends it at once.
  const RETRY_DELAYS = [1000, 2000, 4000];
  const retried = async (job, attempt) => {
    for (let tries = 0; ; tries++) {
      try {
        return await attempt();
      } catch (error) {
        if (!error.transient || job.cancelled || tries >= RETRY_DELAYS.length) throw error;
        await new Promise((resolve) => setTimeout(resolve, RETRY_DELAYS[tries]));
      }
    }
  };

  const single = async (job) => {
    const started = await api("POST", "/upload/", {
      filename: job.name, folder: job.folder, size: job.file.size, sha256: await sha256(job.file),
      share_id: job.share || undefined,
    }, job.signal);
    job.started = started;
    if (started.status === "complete") return;  // the file holds these bytes already
    const form = new FormData();
    for (const [name, value] of Object.entries(started.upload.fields)) form.append(name, value);
    form.append("file", job.file);
    await retried(job, () => send("POST", started.upload.url, form, null, (n) => job.progress(n), job));
    await retried(job, () => api("POST", "/upload/" + started.file_id + "/complete", {upload_id: started.upload_id}, job.signal));
  };

  // What an interrupted upload left in storage: {started, stored part numbers}, or null when
  // there is nothing to go on with (then it is dropped and the file starts again).
  const resumable = async (job) => {
    const record = unfinished.find((r) => sameFile(r, job));
    if (!record) return null;
    try {
      const listed = await api("GET", "/upload/" + record.file_id + "/parts?upload_id=" + record.upload_id, undefined, job.signal);
      const whole = (number) => Math.min(listed.part_size, job.file.size - (number - 1) * listed.part_size);
      return {
        started: {file_id: record.file_id, upload_id: record.upload_id, status: "pending",
                  upload: {part_size: listed.part_size, part_count: listed.part_count}},
        stored: new Set(listed.parts.filter((p) => p.size === whole(p.part_number)).map((p) => p.part_number)),
      };
    } catch (error) {
      if (job.cancelled) throw error;
      try { await api("DELETE", "/upload/" + record.file_id + "?upload_id=" + record.upload_id); } catch { /* gone already */ }
      forget(record.file_id);
      return null;
    }
  };

  const multipart = async (job) => {
    const resumed = await resumable(job);
    const started = resumed ? resumed.started : await api("POST", "/upload/", {
      filename: job.name, folder: job.folder, size: job.file.size, multipart: true,
      share_id: job.share || undefined,
    }, job.signal);
    job.started = started;
    if (!resumed) {
      remember({
        file_id: started.file_id, upload_id: started.upload_id, name: job.name, folder: job.folder,
        share: job.share, size: job.file.size, modified: job.file.lastModified,
      });
    }
    const stored = resumed ? resumed.stored : new Set();
    const count = started.upload.part_count, size = started.upload.part_size;
    const partSize = (number) => Math.min(size, job.file.size - (number - 1) * size);
    const done = Array.from({length: count}, (_, i) => stored.has(i + 1) ? partSize(i + 1) : 0);
    job.progress(done.reduce((a, b) => a + b, 0));
    const missing = done.map((sent, i) => i + 1).filter((number) => !stored.has(number));
    const worker = async () => {
      while (missing.length && !job.cancelled) {
        const number = missing.shift();
        const piece = job.file.slice((number - 1) * size, Math.min(number * size, job.file.size));
        const hash = await sha256(piece);
        await retried(job, async () => {
          const signed = await api("POST", "/upload/" + started.file_id + "/parts", {
            upload_id: started.upload_id, part_numbers: [number], sha256: {[number]: hash},
          }, job.signal);
          const part = signed.parts[0];
          await send("PUT", part.url, piece, part.headers, (n) => { done[number - 1] = n; job.progress(done.reduce((a, b) => a + b, 0)); }, job);
        });
        done[number - 1] = piece.size;
      }
    };
    // Every sender settles before the upload goes on or is cancelled: none may still be
    // asking for a URL when the server drops the upload.
    const senders = await Promise.allSettled(Array.from({length: Math.min(PARTS_AT_ONCE, missing.length)}, worker));
    const failed = senders.find((sender) => sender.status === "rejected");
    if (failed) throw failed.reason;
    if (job.cancelled) throw new Error("cancelled");
    await retried(job, () => api("POST", "/upload/" + started.file_id + "/complete", {upload_id: started.upload_id}, job.signal));
  };

  const jobs = [];
  const showTotal = () => {
    const size = jobs.reduce((a, j) => a + j.file.size, 0) || 1;
    total.value = jobs.reduce((a, j) => a + j.sent, 0) / size;
    total.hidden = false;
  };

  // Uploads a page left unfinished, this account's, kept in the browser: a page's own
  // record of its own uploads (the server still checks each against the account).
  const STORE = "dropp.unfinished-uploads." + box.dataset.account;
  const load = () => { try { return JSON.parse(localStorage.getItem(STORE)) || []; } catch { return []; } };
  const unfinished = load();
  const save = () => localStorage.setItem(STORE, JSON.stringify(unfinished));
  const remember = (record) => { unfinished.push(record); save(); };
  const forget = (fileId) => {
    const at = unfinished.findIndex((r) => r.file_id === fileId);
    if (at >= 0) unfinished.splice(at, 1);
    save();
    const shown = document.getElementById("unfinished-" + fileId);
    if (shown) shown.remove();
    document.getElementById("unfinished").hidden = !unfinished.length;
  };
  const sameFile = (record, job) => record.name === job.name && record.folder === job.folder
    && record.share === job.share && record.size === job.file.size && record.modified === job.file.lastModified;

  const upload = async (file, relative, into) => {
    const parts = (relative || file.name).split("/");
    const name = parts.pop();
    const inner = parts.join("/");
    const target = into || {folder: inner ? folder.replace(/\/$/, "") + "/" + inner : folder, share};
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
      file, name, folder: target.folder, share: target.share,
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
      if (job.started) forget(job.started.file_id);
      say("uploaded");
      return true;
    } catch (error) {
      const record = job.started && unfinished.find((r) => r.file_id === job.started.file_id);
      if (record && error.transient && !job.cancelled) {
        // Still failing after the retries, the connection most likely: what storage holds
        // is kept, to go on with once it is back (or to discard).
        showRecord(record);
        say(error.message + ": it is kept under Unfinished uploads, to go on with when the connection is back", true);
        return false;
      }
      if (job.started && job.started.status !== "complete") {
        try { await api("DELETE", "/upload/" + job.started.file_id + "?upload_id=" + job.started.upload_id); } catch { /* said below */ }
        forget(job.started.file_id);
      }
      say(job.cancelled ? "cancelled" : error.message, !job.cancelled);
      return false;
    }
  };

  // The unfinished uploads, each to be picked again (a page cannot reopen a file by itself)
  // or discarded, which cancels it on the server.
  const shown = document.getElementById("unfinished-list");
  const showRecord = (record) => {
    document.getElementById("unfinished-" + record.file_id)?.remove();
    const item = document.createElement("li");
    item.id = "unfinished-" + record.file_id;
    const label = document.createElement("label");
    const picker = document.createElement("input");
    const discard = document.createElement("button");
    const said = document.createElement("span");
    label.htmlFor = picker.id = "resume-" + record.file_id;
    label.textContent = "Pick " + record.name + " again";
    picker.type = "file";
    discard.type = "button";
    discard.className = "secondary";
    discard.textContent = "Discard " + record.name;
    said.setAttribute("role", "status");
    item.append(record.name + " (" + sizeText(record.size) + ") into " + record.folder + ": ", label, " ", picker, " ", discard, " ", said);
    shown.append(item);
    picker.addEventListener("change", () => {
      const [file] = picker.files;
      picker.value = "";
      if (!file) return;
      if (file.name !== record.name || file.size !== record.size || file.lastModified !== record.modified) {
        said.textContent = "That is not the same file (its name, size or date differ).";
        return;
      }
      item.remove();
      uploadAll([[file, ""]], {folder: record.folder, share: record.share});
    });
    discard.addEventListener("click", async () => {
      discard.disabled = true;
      try {
        await api("DELETE", "/upload/" + record.file_id + "?upload_id=" + record.upload_id);
      } catch (error) {
        // Gone already, or finished after all: nothing is left to discard.
        if (![404, 409].includes(error.status)) {
          said.textContent = "Could not discard it: " + error.message;
          discard.disabled = false;
          return;
        }
      }
      forget(record.file_id);
    });
    document.getElementById("unfinished").hidden = false;
  };
  const sizeText = (bytes) => {
    for (const [unit, scale] of [["GB", 1e9], ["MB", 1e6], ["KB", 1e3]]) {
      if (bytes >= scale) return (bytes / scale).toFixed(1) + " " + unit;
    }
    return bytes + " B";
  };
  unfinished.forEach(showRecord);

  const uploadAll = async (entries, into) => {
    const done = document.getElementById("upload-done");
    done.hidden = true;
    const results = [];
    for (const [file, relative] of entries) results.push(await upload(file, relative, into));
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
