// The API client: JSON in and out, the CSRF token on every change, and one error type
// carrying the API's own message (it says what was wrong).
const PREFIX = "/api/v1";
let csrf = null;

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

export function setCsrf(token) {
  csrf = token;
}

async function csrfToken() {
  if (!csrf) csrf = (await api("/auth/csrf")).csrf_token;
  return csrf;
}

export function apiUrl(path, query) {
  const url = new URL(PREFIX + path, location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, v);
  }
  return url.pathname + url.search;
}

export async function api(path, { method = "GET", body, query, signal } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") {
    headers["X-CSRFToken"] = await csrfToken();
    if (body !== undefined) headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(apiUrl(path, query), {
      method, headers, signal, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, { error: "the server cannot be reached; retrying may help" });
  }
  if (response.status === 204) return null;
  let data;
  try {
    data = await response.json();
  } catch (err) {
    if (err.name === "AbortError") throw err; // the caller moved on while the body came in
    if (response.ok) throw new ApiError(response.status, { error: "the server's answer is not JSON" });
    data = { error: `${response.status} ${response.statusText}` };
  }
  if (!response.ok) {
    if (response.status === 400 && /CSRF/.test(data.error || "")) csrf = null; // a new session: fetch anew
    throw new ApiError(response.status, data);
  }
  return data;
}
