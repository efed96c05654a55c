// The web app's calls to Dropp's JSON API, as the signed-in person: a short-lived access
// token from POST /app/token (sent with the page's CSRF token, as any form is), asked for
// again shortly before it ends. The session cookie itself never authorizes an API call.
window.droppApi = (csrf) => {
  "use strict";
  let token = null;
  const accessToken = async () => {
    if (token && token.until > Date.now()) return token.value;
    const form = new FormData();
    form.append("csrf", csrf);
    let answer;
    try {
      answer = await fetch("/app/token", {method: "POST", body: form});
    } catch {
      const failure = new Error("the connection to Dropp failed");
      failure.transient = true;
      throw failure;
    }
    if (!answer.ok) {
      const failure = new Error(answer.status === 401 ? "your session has ended: sign in again" : "the server refused: " + answer.status);
      failure.status = answer.status;
      throw failure;
    }
    const body = await answer.json();
    token = {value: body.access_token, until: Date.now() + (body.expires_in - 30) * 1000};
    return token.value;
  };

  // `signal`: a cancelled call stops at once. A refusal throws an Error with the server's
  // words and its `status`; `transient` when it may pass (the network, or 5xx).
  const call = async (method, path, body, signal) => {
    const bearer = "Bearer " + await accessToken();
    let answer;
    try {
      answer = await fetch(path, {
        method,
        headers: {"Authorization": bearer, "Content-Type": "application/json"},
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      });
    } catch (error) {
      if (error.name === "AbortError") throw error;
      const failure = new Error("the connection to Dropp failed");
      failure.transient = true;
      throw failure;
    }
    if (answer.status === 204) return null;
    let parsed = null;
    try { parsed = await answer.json(); } catch { /* not JSON */ }
    if (!answer.ok) {
      const failure = new Error((parsed && parsed.detail) || ("the server answered " + answer.status));
      failure.status = answer.status;
      failure.transient = answer.status >= 500;
      throw failure;
    }
    return parsed;
  };
  // The token itself, for what cannot send a header: the Send page's WebSocket (docs/p2p.md).
  call.accessToken = accessToken;
  return call;
};
