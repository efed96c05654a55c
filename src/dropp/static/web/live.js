// A folder's page follows the account's changes without a reload: it listens on the
// account's event stream (GET /events, docs/events.md), reads what changed when it hears
// `changes` (GET /sync/changes, the source of truth), and when any of it may touch this
// folder draws the listing again from the server. Where the stream cannot be opened (an
// older server, a proxy that blocks or buffers it) it waits on the change feed's long-poll
// (GET /sync/longpoll) instead, and tries the stream again later. While the person is busy
// in the listing (an item's actions open, or a field of it focused) it only says that the
// folder changed, and redraws when asked.
(() => {
  "use strict";
  const listing = document.getElementById("listing");
  if (!listing) return;
  const here = listing.dataset.path;
  const api = window.droppApi(listing.dataset.csrf);
  const notice = document.getElementById("listing-changed");
  const said = document.getElementById("listing-status");
  const WAIT_SECONDS = 30;
  // No `ready` by then: something between buffers the stream.
  const READY_MS = 10000;
  // The server's EVENTS_HEARTBEAT_SECONDS: a stream silent for 2.5 of them is dead.
  const SILENT_MS = 2.5 * 15000;
  // How long the long-poll stands in for a stream that could not be opened.
  const STREAM_AGAIN_MS = 5 * 60000;
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  const inFolder = (path) => (path.slice(0, path.lastIndexOf("/")) || "/") === here;
  // A move or a delete names only where the node is now (or was): it may have left here.
  const touches = (change) => change.change === "moved" || change.change === "deleted" || inFolder(change.path);
  const busy = () => listing.querySelector("details[open]") !== null || listing.contains(document.activeElement);

  const redraw = async () => {
    const answer = await fetch(location.href, {headers: {"Accept": "text/html"}});
    if (!answer.ok) return;
    const page = new DOMParser().parseFromString(await answer.text(), "text/html");
    const fresh = page.getElementById("listing");
    if (!fresh) return;
    listing.replaceChildren(...Array.from(fresh.childNodes, (node) => document.importNode(node, true)));
    notice.hidden = true;
    said.textContent = "The folder was updated.";
  };
  notice.querySelector("button").addEventListener("click", redraw);

  const changed = () => (busy() ? (notice.hidden = false) : redraw());

  // Reads pages of changes from `page` on; whether any may touch this folder, and the cursor
  // after them.
  const readOn = async (page) => {
    let touched = page.changes.some(touches);
    while (page.has_more) {
      page = await api("GET", "/sync/changes?" + new URLSearchParams({cursor: page.cursor}));
      touched = touched || page.changes.some(touches);
    }
    return {touched, cursor: page.cursor};
  };

  let cursor = null;
  // The feed from `cursor` on (the first time, from the moment the page was drawn: what
  // changed since is not missed), drawn again if it touched this folder.
  const read = async () => {
    const first = cursor === null
      ? await api("POST", "/sync/init", {last_sync_ts: listing.dataset.since})
      : await api("GET", "/sync/changes?" + new URLSearchParams({cursor}));
    const done = await readOn(first);
    cursor = done.cursor;
    if (done.touched) await changed();
  };

  // Server-Sent Events as the HTML standard parses them: text in as it comes, each whole
  // event out to `dispatch`; `state` keeps the last id and the retry time across streams.
  const parser = (state, dispatch) => {
    let rest = "";
    let afterCR = false;
    let type = "";
    let data = [];
    let id = state.lastId;
    const line = (text) => {
      if (text === "") {
        state.lastId = id;
        if (data.length) dispatch({type: type || "message", data: data.join("\n"), id});
        type = "";
        data = [];
        return;
      }
      if (text[0] === ":") return;
      const colon = text.indexOf(":");
      const name = colon < 0 ? text : text.slice(0, colon);
      let value = colon < 0 ? "" : text.slice(colon + 1);
      if (value[0] === " ") value = value.slice(1);
      if (name === "event") type = value;
      else if (name === "data") data.push(value);
      else if (name === "id" && !value.includes("\0")) id = value;
      else if (name === "retry" && /^[0-9]+$/.test(value)) state.retry = Number(value);
    };
    return (chunk) => {
      if (!chunk) return;
      // A CR ending the last chunk and an LF opening this one are one line end.
      if (afterCR && chunk[0] === "\n") chunk = chunk.slice(1);
      const text = rest + chunk;
      afterCR = text.endsWith("\r");
      const lines = text.split(/\r\n|\r|\n/);
      rest = lines.pop();
      lines.forEach(line);
    };
  };

  const unavailable = (why) => Object.assign(new Error("the event stream cannot be opened: " + why), {unavailable: true});

  // One stream, until it ends (its token ran out), drops or falls silent: then another is
  // opened from the last id. Throws `unavailable` when it cannot be opened, a refusal of
  // the feed's, or a network failure before it was ready.
  const listen = async (state) => {
    const headers = {"Authorization": "Bearer " + await api.accessToken(), "Accept": "text/event-stream"};
    const query = new URLSearchParams();
    if (state.lastId) headers["Last-Event-ID"] = state.lastId;
    else query.set("cursor", cursor);
    const stop = new AbortController();
    let timer = 0;
    const expect = (ms) => {
      clearTimeout(timer);
      timer = setTimeout(() => stop.abort(), ms);
    };
    let ready = false;
    let failed = null;
    let reading = null;
    // `changes` heard: the feed is read, one read at a time, again if more was heard meanwhile.
    const heard = (event) => {
      if (event.type === "ready") ready = true;
      if (event.type !== "changes" && event.type !== "reset") return;
      state.unread = true;
      reading = reading || (async () => {
        try {
          while (state.unread) {
            state.unread = false;
            await read();
          }
        } catch (error) {
          state.unread = true;
          failed = error;
          stop.abort();
        } finally {
          reading = null;
        }
      })();
    };
    expect(READY_MS);
    try {
      const answer = await fetch("/events?" + query, {headers, signal: stop.signal, cache: "no-store"});
      const type = (answer.headers.get("Content-Type") || "").split(";")[0].trim().toLowerCase();
      if (answer.status === 401) throw Object.assign(new Error("signed out"), {status: 401});
      if (!answer.ok) throw unavailable("the server answered " + answer.status);
      if (type !== "text/event-stream" || !answer.body) throw unavailable("the server answered " + (type || "no content type"));
      const feed = parser(state, heard);
      const reader = answer.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const {value, done} = await reader.read();
        if (done) break;
        feed(value);
        if (ready) expect(SILENT_MS);
      }
    } catch (error) {
      if (error.unavailable || error.status === 401) throw error;
      if (!ready && !failed) throw stop.signal.aborted ? unavailable("no ready within 10 s") : error;
      // Dropped or silent once ready: another stream goes on from the last id.
    } finally {
      clearTimeout(timer);
      stop.abort();
    }
    if (reading) await reading;
    if (failed) throw failed;
    if (!ready) throw unavailable("it ended before it was ready");
  };

  const follow = async () => {
    const state = {lastId: null, retry: 3000, unread: false};
    let streamAgainAt = 0;
    let pause = 1000;
    for (;;) {
      try {
        if (cursor === null || state.unread) {
          // Heard of, but not read (the read failed): a stream resumed from its last id
          // would not say so again.
          await read();
          state.unread = false;
        } else if (Date.now() >= streamAgainAt) {
          try {
            await listen(state);
            await sleep(state.retry);
          } catch (error) {
            if (!error.unavailable) throw error;
            // The long-poll goes on from the cursor, and so does the next stream.
            state.lastId = null;
            streamAgainAt = Date.now() + STREAM_AGAIN_MS;
          }
        } else {
          const waited = await api("GET", "/sync/longpoll?" + new URLSearchParams({cursor, timeout: WAIT_SECONDS}));
          if (waited.changes) await read();
        }
        pause = 1000;
      } catch (error) {
        // Signed out: nothing to follow. A cursor refused or too old: start again from
        // now. Anything else (the server or the network away): again, less and less often.
        if (error.status === 401) return;
        if (error.status === 400 || error.status === 410) {
          cursor = null;
          state.lastId = null;
          listing.dataset.since = new Date().toISOString();
          await changed().catch(() => {});
        }
        await sleep(pause);
        pause = Math.min(pause * 2, 60000);
      }
    }
  };
  follow();
})();
