// A folder's page follows the account's changes without a reload: it waits on the change
// feed's long-poll (GET /sync/longpoll), reads what changed (GET /sync/changes, the source
// of truth), and when any of it may touch this folder draws the listing again from the
// server. While the person is busy in the listing (an item's actions open, or a field of it
// focused) it only says that the folder changed, and redraws when asked.
(() => {
  "use strict";
  const listing = document.getElementById("listing");
  if (!listing) return;
  const here = listing.dataset.path;
  const api = window.droppApi(listing.dataset.csrf);
  const notice = document.getElementById("listing-changed");
  const said = document.getElementById("listing-status");
  const WAIT_SECONDS = 30;

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

  const follow = async () => {
    let cursor = null;
    let pause = 1000;
    for (;;) {
      try {
        let read = null;
        if (cursor === null) {
          // From the moment the page was drawn: what changed since is not missed.
          read = await readOn(await api("POST", "/sync/init", {last_sync_ts: listing.dataset.since}));
        } else {
          const waited = await api("GET", "/sync/longpoll?" + new URLSearchParams({cursor, timeout: WAIT_SECONDS}));
          if (waited.changes) read = await readOn(await api("GET", "/sync/changes?" + new URLSearchParams({cursor})));
        }
        if (read) {
          cursor = read.cursor;
          if (read.touched) await changed();
        }
        pause = 1000;
      } catch (error) {
        // Signed out: nothing to follow. A cursor refused or too old: start again from
        // now. Anything else (the server or the network away): again, less and less often.
        if (error.status === 401) return;
        if (error.status === 400 || error.status === 410) {
          cursor = null;
          listing.dataset.since = new Date().toISOString();
          await changed().catch(() => {});
        }
        await new Promise((resolve) => setTimeout(resolve, pause));
        pause = Math.min(pause * 2, 60000);
      }
    }
  };
  follow();
})();
