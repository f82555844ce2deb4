// The editor's JSON API: every mutating request carries the session token from the address ctxgen printed.

const params = new URLSearchParams(location.search);
const fromUrl = params.get("token");
if (fromUrl) {
  sessionStorage.setItem("ctxgen-token", fromUrl);
  history.replaceState(null, "", location.pathname); // keep the token out of the address bar and history
}
const token = fromUrl || sessionStorage.getItem("ctxgen-token") || "";

export const hasToken = () => token !== "";

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.detail) || `request failed (${status})`);
    this.status = status;
    this.body = body || {};
  }
}

export async function api(method, url, body, { raw = false } = {}) {
  const headers = {};
  if (method !== "GET") headers["X-Ctxgen-Token"] = token;
  let payload;
  if (raw) payload = body;
  else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, { method, headers, body: payload });
  } catch (err) {
    throw new ApiError(0, { detail: "the editor server does not answer (was `ctxgen edit` stopped?)" });
  }
  const isJson = (response.headers.get("content-type") || "").includes("json");
  const data = isJson ? await response.json() : null;
  if (!response.ok) {
    const detail = data && typeof data.detail !== "string" ? JSON.stringify(data.detail) : undefined;
    throw new ApiError(response.status, detail ? { ...data, detail } : data);
  }
  return data;
}

// Follow a job's server-sent events; `on[type](event)` for progress, record, done, failed, cancelled.
export function follow(jobId, on) {
  const source = new EventSource(`/api/jobs/${encodeURIComponent(jobId)}/events`);
  for (const type of ["state", "progress", "record", "cancelling", "done", "failed", "cancelled"]) {
    source.addEventListener(type, (msg) => {
      const event = JSON.parse(msg.data);
      if (on[type]) on[type](event);
      if (["done", "failed", "cancelled"].includes(type)) source.close();
    });
  }
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED && on.lost) on.lost();
  };
  return source;
}
