// The Send (/app/send) and Receive (/receive) pages: one file between two peers over a
// WebRTC data channel, introduced by Dropp's /p2p socket (docs/p2p.md is the contract).
// The sender hashes the file (SHA-256, streaming, hash-wasm), opens a transfer and shows its
// code; once the receiver joins it makes the data channel and the offer, and sends the file
// in 64 KiB messages, never letting more than 1 MiB wait in the channel. When no channel is
// open 15 s after the receiver joined, or either side asks, the file goes through storage
// instead. The receiver checks what arrived against the SHA-256 the sender declared to the
// server before it offers the file to save, and only then says `done`.
(() => {
  "use strict";
  const CHUNK = 64 * 1024;
  const HIGH_WATER = 1024 * 1024;
  const LOW_WATER = 256 * 1024;
  const P2P_TIMEOUT_MS = 15000;
  // Candidates gathered by then go in the SDP itself: a peer that does not trickle (aiortc)
  // gets them all; later ones follow as {"ice": candidate}.
  const GATHER_WAIT_MS = 2000;
  const READ_BLOCK = 4 * 1024 * 1024;
  const PROGRESS_BYTES = 1024 * 1024;
  const PROGRESS_MS = 1000;

  const $ = (id) => document.getElementById(id);
  const sizeText = (bytes) => {
    for (const [unit, scale] of [["GB", 1e9], ["MB", 1e6], ["KB", 1e3]]) {
      if (bytes >= scale) return (bytes / scale).toFixed(1) + " " + unit;
    }
    return bytes === 1 ? "1 byte" : bytes + " bytes";
  };

  // What each refusal of the socket means to the person (the server's own words otherwise).
  const WORDS = {
    unknown_code: "No file is waiting for this code: it may be mistyped, already used or expired. Check it with the sender, or ask them for a new one.",
    peer_left: "The other side left before the file arrived.",
    timeout: "Nobody came for the file while its code was valid. Send it again for a new code.",
    rate_limited: "Too many codes were tried from this address: wait a minute, then try again.",
    not_authenticated: "Your session has ended: sign in again.",
    unavailable: "Dropp is unavailable right now: try again in a moment.",
  };
  const refusal = (error, event) => {
    if (error) return WORDS[error.code] || error.detail || "Dropp refused (" + error.code + ").";
    if (event.code === 1006) return "The connection to Dropp failed.";
    return "The connection to Dropp ended before the file arrived.";
  };

  // The signaling socket: `first` is sent once it is open; each message a JSON object. An
  // `error` message is kept for the close that follows it.
  const signaling = (first, onMessage, onEnd) => {
    const socket = new WebSocket((location.protocol === "https:" ? "wss:" : "ws:") + "//" + location.host + "/p2p");
    let error = null;
    const link = {
      send: (message) => {
        if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
      },
      close: () => socket.close(1000),
    };
    socket.onopen = () => link.send(first);
    socket.onmessage = (event) => {
      let message;
      try { message = JSON.parse(event.data); } catch { return; }
      if (message && message.type === "error") error = message;
      else if (message && typeof message.type === "string") onMessage(message);
    };
    socket.onclose = (event) => onEnd(event, error);
    return link;
  };

  // `progress` to the peer about every MiB or second, whichever is later, and at the end.
  const reporter = (link) => {
    let bytes = 0, at = 0;
    return (now, last) => {
      const time = Date.now();
      if (last || (now - bytes >= PROGRESS_BYTES && time - at >= PROGRESS_MS)) {
        bytes = now;
        at = time;
        link.send({type: "progress", bytes: now});
      }
    };
  };

  // Resolves once the connection gathered its candidates, or after GATHER_WAIT_MS.
  const gathered = (pc) => new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") return resolve();
    const timer = setTimeout(resolve, GATHER_WAIT_MS);
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") { clearTimeout(timer); resolve(); }
    });
  });

  // A signal's data: {"sdp": RTCSessionDescriptionInit} or {"ice": RTCIceCandidateInit |
  // null}, as this page and `dropp send|receive` send them; a bare description or candidate
  // (as a WebRTC library gives it) is taken too. `undefined`: neither.
  const descriptionOf = (data) => {
    if (typeof data.sdp === "string" && typeof data.type === "string") return {type: data.type, sdp: data.sdp};
    const inner = data.sdp;
    return inner && typeof inner === "object" && typeof inner.sdp === "string" ? {type: inner.type, sdp: inner.sdp} : null;
  };
  const candidateOf = (data) => {
    if ("ice" in data) return data.ice;
    if ("candidate" in data) return typeof data.candidate === "string" ? data : data.candidate;
    return undefined;
  };

  // One peer connection's half of the signaling: descriptions and candidates in the order
  // they came, candidates held until the remote description is set; ours sent once the
  // description holds what was gathered by then, the rest trickled after it.
  const peer = (link, iceServers, offering) => {
    const pc = new RTCPeerConnection({iceServers: iceServers || []});
    let described = false;
    let held = [];
    let queue = Promise.resolve();
    // No end-of-candidates ({"ice": null}) is sent: given one, aiortc declares the
    // connection failed as soon as the listed pairs fail, before it tries the peer-reflexive
    // ones (which is how it meets a browser on loopback, and often behind NATs).
    pc.onicecandidate = (event) => {
      if (described && event.candidate) link.send({type: "signal", data: {ice: event.candidate.toJSON()}});
    };
    const describe = async (description) => {
      await pc.setLocalDescription(description);
      await gathered(pc);
      link.send({type: "signal", data: {sdp: pc.localDescription.toJSON()}});
      described = true;
    };
    const take = async (data) => {
      if (!data || typeof data !== "object" || pc.signalingState === "closed") return;
      const description = descriptionOf(data);
      if (description) {
        // Only the sender offers, once; anything else is not this transfer's to take.
        if (pc.remoteDescription || description.type !== (offering ? "answer" : "offer")) return;
        await pc.setRemoteDescription(description);
        for (const candidate of held) await pc.addIceCandidate(candidate).catch(() => {});
        held = [];
        if (description.type === "offer") await describe(await pc.createAnswer());
        return;
      }
      const candidate = candidateOf(data);
      if (!candidate || !candidate.candidate) return;  // the end of the other's candidates
      if (pc.remoteDescription) await pc.addIceCandidate(candidate).catch(() => {});
      else held.push(candidate);
    };
    return {
      pc,
      offer: async () => describe(await pc.createOffer()),
      signal: (data, failed) => { queue = queue.then(() => take(data)).catch(failed); },
      close: () => pc.close(),
    };
  };

  // An element's text, with or without the alert look; `null` hides it.
  const say = (element, text) => {
    element.textContent = text || "";
    if (element.getAttribute("role") === "alert") element.hidden = !text;
  };
  const copy = async (text, said, fallbackElement) => {
    try {
      await navigator.clipboard.writeText(text);
      said.textContent = "Copied.";
    } catch {
      const range = document.createRange();
      range.selectNodeContents(fallbackElement);
      getSelection().removeAllRanges();
      getSelection().addRange(range);
      said.textContent = "Selected: press Ctrl+C (⌘C on a Mac) to copy.";
    }
  };

  // --- sending ------------------------------------------------------------------------

  const sender = (box) => {
    const api = window.droppApi(box.dataset.csrf);
    const pick = $("send-pick"), picker = $("send-file");
    const codeBox = $("send-code-box"), codeText = $("send-code"), copied = $("send-copied");
    const name = $("send-file-name"), bar = $("send-progress");
    const status = $("send-status"), alert = $("send-error");
    const cloudButton = $("send-cloud"), cancelButton = $("send-cancel"), again = $("send-again");
    let job = null;

    const showBar = (label, fraction) => {
      bar.hidden = false;
      bar.setAttribute("aria-label", label);
      bar.value = fraction;
    };
    const end = (job) => {
      job.over = true;
      clearTimeout(job.timer);
      if (job.peer) job.peer.close();
      if (job.request) job.request.abort();
      cloudButton.hidden = cancelButton.hidden = true;
      again.hidden = false;
    };
    const fail = (job, text) => {
      if (job.over) return;
      end(job);
      if (job.link) job.link.close();
      say(status, "");
      say(alert, text);
    };

    const hashFile = async (file, progress) => {
      const hasher = await window.hashwasm.createSHA256();
      hasher.init();
      for (let at = 0; at < file.size; at += READ_BLOCK) {
        hasher.update(new Uint8Array(await file.slice(at, at + READ_BLOCK).arrayBuffer()));
        progress(Math.min(at + READ_BLOCK, file.size));
      }
      return hasher.digest("hex");
    };

    const start = async (file) => {
      const current = job = {file, over: false, cloud: false, wantCloud: false, joined: false};
      pick.hidden = true;
      again.hidden = true;
      say(alert, null);
      name.hidden = false;
      name.textContent = file.name + " (" + sizeText(file.size) + ")";
      say(status, "Computing the file's checksum…");
      cancelButton.hidden = false;
      try {
        showBar("Checksum computed", 0);
        const sha256 = await hashFile(file, (n) => { bar.value = file.size ? n / file.size : 1; });
        if (current.over) return;
        current.sha256 = sha256;
        const token = await api.accessToken();
        if (current.over) return;
        say(status, "Asking Dropp for a code…");
        current.link = signaling(
          {type: "open", token, file: {name: file.name, size: file.size, sha256}},
          (message) => heard(current, message),
          (event, error) => ended(current, event, error),
        );
      } catch (error) {
        fail(current, "Could not send the file: " + error.message);
      }
    };

    const heard = (job, message) => {
      if (job.over) return;
      switch (message.type) {
        case "opened": {
          job.transferId = message.transfer_id;
          job.iceServers = message.ice_servers;
          codeText.textContent = message.code;
          codeBox.hidden = false;
          bar.hidden = true;
          const until = new Date(message.expires_at);
          $("send-expiry").textContent = "It works once, until " + until.toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"}) + ".";
          say(status, "Waiting for the receiver. Give them the code " + message.code + ".");
          cloudButton.hidden = false;
          break;
        }
        case "peer_joined":
          job.joined = true;
          codeBox.hidden = true;
          if (job.wantCloud) {
            cloud(job, "the sender chose to send it through Dropp");
            break;
          }
          say(status, "The receiver is here: connecting directly…");
          job.timer = setTimeout(() => cloud(job, "no direct connection within 15 seconds"), P2P_TIMEOUT_MS);
          direct(job).catch(() => cloud(job, "the direct connection could not be set up"));
          break;
        case "signal":
          if (job.peer && !job.cloud) job.peer.signal(message.data, () => cloud(job, "the direct connection could not be set up"));
          break;
        case "fallback":
          cloud(job, null, message.reason);
          break;
        case "stored":
          say(status, "Stored: waiting for the receiver to download and check it…");
          break;
        case "done":
          job.done = message.via;
          end(job);
          bar.value = 1;
          say(status, message.via === "cloud"
            ? "Sent through Dropp: the file went through Dropp's storage, and was deleted there once the receiver had checked it."
            : "Sent peer to peer: the file went straight to the receiver, who checked it. Dropp never had it.");
          break;
        default:
          break;
      }
    };

    const ended = (job, event, error) => {
      if (job.done || job.cancelled) return;
      fail(job, refusal(error, event));
    };

    // Straight to the receiver: the channel, the offer, then the file once it opens.
    const direct = async (job) => {
      job.peer = peer(job.link, job.iceServers, true);
      const channel = job.peer.pc.createDataChannel("dropp-file", {ordered: true});
      channel.binaryType = "arraybuffer";
      channel.bufferedAmountLowThreshold = LOW_WATER;
      channel.onopen = () => {
        clearTimeout(job.timer);
        if (!job.cloud && !job.over) pump(job, channel).catch(() => cloud(job, "the direct connection broke"));
      };
      channel.onclose = () => {
        // Closed by the receiver once it has everything: its `done` is on its way.
        if (job.sentAll && channel.bufferedAmount === 0) return;
        if (!job.over && !job.cloud && !job.done) cloud(job, "the direct connection closed");
      };
      job.peer.pc.onconnectionstatechange = () => {
        if (job.peer.pc.connectionState === "failed" && !job.sentAll) cloud(job, "the direct connection failed");
      };
      await job.peer.offer();
    };

    const pump = async (job, channel) => {
      const file = job.file, report = reporter(job.link);
      showBar("Sent", 0);
      say(status, "Sending straight to the receiver…");
      const roomy = () => new Promise((resolve) => {
        channel.addEventListener("bufferedamountlow", resolve, {once: true});
        channel.addEventListener("close", resolve, {once: true});
      });
      for (let offset = 0; offset < file.size;) {
        const block = await file.slice(offset, offset + READ_BLOCK).arrayBuffer();
        for (let at = 0; at < block.byteLength; at += CHUNK) {
          while (channel.readyState === "open" && channel.bufferedAmount + CHUNK > HIGH_WATER) await roomy();
          if (job.cloud || job.over) return;
          if (channel.readyState !== "open") throw new Error("closed");
          channel.send(block.slice(at, at + CHUNK));
          const sent = offset + Math.min(at + CHUNK, block.byteLength) - channel.bufferedAmount;
          bar.value = sent / file.size;
          report(sent, false);
        }
        offset += block.byteLength;
      }
      job.sentAll = true;
      report(file.size, true);
      say(status, "Everything is sent: waiting for the receiver to check it…");
    };

    // Through storage: asked for by `reason` (we) or by the receiver (`theirs`).
    const cloud = async (job, reason, theirs) => {
      if (job.cloud || job.over || job.done) return;
      job.cloud = true;
      clearTimeout(job.timer);
      cloudButton.hidden = true;
      if (reason) job.link.send({type: "fallback", reason});
      if (job.peer) job.peer.close();
      say(status, "Sending through Dropp instead (" + (reason || "the receiver asked: " + (theirs || "no reason given")) + ")…");
      try {
        const form = await api("POST", "/p2p/transfers/" + job.transferId + "/upload");
        const upload = form.upload || form;
        showBar("Uploaded", 0);
        await toStorage(job, upload);
        if (job.over) return;
        await api("POST", "/p2p/transfers/" + job.transferId + "/stored");
        if (!job.over && !job.done) say(status, "Stored: waiting for the receiver to download and check it…");
      } catch (error) {
        if (!job.over) fail(job, "Could not send it through Dropp: " + error.message);
      }
    };

    // The upload form, posted as the Upload page posts its forms.
    const toStorage = (job, upload) => new Promise((resolve, reject) => {
      const form = new FormData();
      for (const [field, value] of Object.entries(upload.fields)) form.append(field, value);
      form.append("file", job.file);
      const request = job.request = new XMLHttpRequest();
      request.open("POST", upload.url);
      request.upload.onprogress = (event) => {
        if (event.lengthComputable) bar.value = event.loaded / event.total;
      };
      request.onload = () => {
        job.request = null;
        if (request.status < 300) resolve();
        else reject(new Error("storage refused the file (" + request.status + ")"));
      };
      request.onerror = () => { job.request = null; reject(new Error("the connection to storage failed")); };
      request.onabort = () => { job.request = null; reject(new Error("cancelled")); };
      request.send(form);
    });

    cloudButton.addEventListener("click", () => {
      if (!job || job.over) return;
      if (job.joined) {
        cloud(job, "the sender chose to send it through Dropp");
      } else {
        job.wantCloud = true;
        cloudButton.hidden = true;
        say(status, "It will go through Dropp as soon as the receiver joins. Give them the code " + codeText.textContent + ".");
      }
    });
    cancelButton.addEventListener("click", () => {
      if (!job || job.over) return;
      job.cancelled = true;
      end(job);
      if (job.link) job.link.close();
      codeBox.hidden = true;
      say(status, "Cancelled: the code no longer works.");
    });
    again.addEventListener("click", () => {
      job = null;
      again.hidden = true;
      name.hidden = bar.hidden = codeBox.hidden = true;
      say(status, "");
      say(alert, null);
      pick.hidden = false;
      picker.focus();
    });
    $("send-copy").addEventListener("click", () => copy(codeText.textContent, copied, codeText));
    $("send-copy-link").addEventListener("click", () => {
      copy(box.dataset.receive + "?code=" + encodeURIComponent(codeText.textContent), copied, codeText);
    });
    picker.addEventListener("change", () => {
      const [file] = picker.files;
      picker.value = "";
      if (file) start(file);
    });
    pick.addEventListener("dragover", (event) => { event.preventDefault(); pick.classList.add("over"); });
    pick.addEventListener("dragleave", () => pick.classList.remove("over"));
    pick.addEventListener("drop", (event) => {
      event.preventDefault();
      pick.classList.remove("over");
      const files = event.dataTransfer.files;
      if (files.length !== 1) {
        say(alert, "Drop one file: this page sends one at a time.");
        return;
      }
      start(files[0]);
    });
    box.hidden = false;
  };

  // --- receiving ----------------------------------------------------------------------

  const receiver = () => {
    const form = $("receive-form"), field = $("receive-code"), button = $("receive-start");
    const name = $("receive-file-name"), bar = $("receive-progress");
    const status = $("receive-status"), alert = $("receive-error");
    const save = $("receive-save"), saveLink = $("receive-link");
    const cloudButton = $("receive-cloud"), cancelButton = $("receive-cancel");
    const hashers = window.hashwasm.createSHA256();
    let job = null;

    const end = (job) => {
      job.over = true;
      // Kept open past `done` until the socket closes: closing it first would tell the
      // sender the connection broke before the server told it the file arrived.
      if (job.peer && !job.finished) job.peer.close();
      if (job.download) job.download.abort();
      cloudButton.hidden = cancelButton.hidden = true;
      field.disabled = button.disabled = false;
    };
    const fail = (job, text) => {
      if (job.over) return;
      end(job);
      job.chunks = [];
      if (job.link) job.link.close();
      bar.hidden = true;
      say(status, "");
      say(alert, text);
    };

    const start = async (code) => {
      if (saveLink.href.startsWith("blob:")) URL.revokeObjectURL(saveLink.href);
      save.hidden = name.hidden = bar.hidden = true;
      say(alert, null);
      field.disabled = button.disabled = true;
      say(status, "Looking for the file…");
      const hasher = await hashers;
      hasher.init();
      const current = job = {hasher, chunks: [], received: 0, over: false, cloud: false};
      current.link = signaling(
        {type: "join", code},
        (message) => heard(current, message),
        (event, error) => ended(current, event, error),
      );
      current.report = reporter(current.link);
    };

    const heard = (job, message) => {
      if (job.over) return;
      switch (message.type) {
        case "joined":
          job.file = message.file;
          job.transferId = message.transfer_id;
          name.hidden = false;
          name.textContent = message.file.name + " (" + sizeText(message.file.size) + ")";
          say(status, "Found it: connecting to the sender…");
          cloudButton.hidden = cancelButton.hidden = false;
          direct(job, message.ice_servers);
          break;
        case "signal":
          if (job.peer && !job.cloud) job.peer.signal(message.data, () => askCloud(job, "the direct connection could not be set up"));
          break;
        case "fallback":
          toCloud(job, "the sender is sending it through Dropp (" + (message.reason || "no reason given") + ")");
          break;
        case "download":
          fromStorage(job, message.url).catch((error) => fail(job, "Could not download it through Dropp: " + error.message));
          break;
        default:
          break;
      }
    };

    const ended = (job, event, error) => {
      if (job.peer) job.peer.close();
      if (job.finished || job.cancelled) return;
      fail(job, refusal(error, event));
      if (error && error.code === "unknown_code") field.focus();
    };

    const direct = (job, iceServers) => {
      job.peer = peer(job.link, iceServers, false);
      job.peer.pc.ondatachannel = (event) => {
        const channel = event.channel;
        if (channel.label !== "dropp-file") return;
        channel.binaryType = "arraybuffer";
        channel.onopen = () => {
          if (job.cloud || job.over) return;
          say(status, "Receiving straight from the sender…");
          bar.hidden = false;
          bar.setAttribute("aria-label", "Received");
          if (job.file.size === 0) finish(job, "p2p");
        };
        channel.onmessage = (message) => {
          if (job.cloud || job.over || job.complete) return;
          if (typeof message.data === "string") return fail(job, "The sender sent something that is not the file: it was discarded.");
          take(job, new Uint8Array(message.data), "p2p");
        };
      };
      job.peer.pc.onconnectionstatechange = () => {
        if (job.peer.pc.connectionState === "failed" && !job.complete) askCloud(job, "the direct connection failed");
      };
    };

    const take = (job, bytes, via) => {
      job.received += bytes.byteLength;
      if (job.received > job.file.size) {
        return fail(job, "More bytes arrived than the sender declared: what came was discarded.");
      }
      job.hasher.update(bytes);
      job.chunks.push(bytes);
      bar.value = job.file.size ? job.received / job.file.size : 1;
      job.report(job.received, false);
      if (job.received === job.file.size) finish(job, via);
    };

    const finish = (job, via) => {
      job.complete = true;
      const sha256 = job.hasher.digest("hex");
      if (sha256 !== String(job.file.sha256).toLowerCase()) {
        return fail(job, "What arrived does not match the checksum the sender declared: it was discarded. Ask the sender to send it again.");
      }
      const blob = new Blob(job.chunks, {type: "application/octet-stream"});
      job.chunks = [];
      saveLink.href = URL.createObjectURL(blob);
      saveLink.download = job.file.name;
      saveLink.textContent = "Save " + job.file.name;
      save.hidden = false;
      bar.value = 1;
      job.report(job.file.size, true);
      job.finished = true;
      job.link.send({type: "done", via, sha256});
      end(job);
      say(status, via === "cloud"
        ? "Received through Dropp and checked: it came through Dropp's storage, which deletes it now."
        : "Received peer to peer and checked: it came straight from the sender.");
      saveLink.focus();
    };

    // The sender goes through storage: what came directly is dropped, the download follows.
    const toCloud = (job, why) => {
      if (job.cloud) return;
      job.cloud = true;
      cloudButton.hidden = true;
      if (job.peer) job.peer.close();
      job.chunks = [];
      job.received = 0;
      job.hasher.init();
      bar.hidden = true;
      say(status, "Waiting for the file to come through Dropp: " + why + "…");
    };
    const askCloud = (job, reason) => {
      if (job.cloud || job.over) return;
      job.link.send({type: "fallback", reason});
      toCloud(job, reason);
    };

    const fromStorage = async (job, url) => {
      toCloud(job, "the sender stored it");
      say(status, "Downloading it through Dropp…");
      bar.hidden = false;
      bar.setAttribute("aria-label", "Downloaded");
      job.download = new AbortController();
      const answer = await fetch(url, {signal: job.download.signal, credentials: "omit"});
      if (!answer.ok) throw new Error("storage answered " + answer.status);
      const reader = answer.body.getReader();
      for (;;) {
        const {done, value} = await reader.read();
        if (done || job.over) break;
        take(job, value, "cloud");
      }
      if (!job.over && !job.complete) fail(job, "The download ended before the whole file arrived.");
    };

    cloudButton.addEventListener("click", () => {
      if (job && !job.over) askCloud(job, "the receiver chose to get it through Dropp");
    });
    cancelButton.addEventListener("click", () => {
      if (!job || job.over) return;
      job.cancelled = true;
      fail(job, null);
      say(status, "Cancelled: the sender is told, and the code no longer works.");
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const code = field.value.trim();
      if (code) start(code).catch((error) => { field.disabled = button.disabled = false; say(alert, "Could not start: " + error.message); });
    });
    $("receive").hidden = false;
  };

  if ($("send")) sender($("send"));
  if ($("receive")) receiver();
})();
