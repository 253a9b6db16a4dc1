// The dashboard's only way to the server: the restore, history and dashboard API (/api/...), point-in-time
// downloads (/db/snapshot) and, for the admin token, /admin/clusters. Every failure becomes an ApiError whose
// message is a sentence a person can act on.

const TOKEN_KEY = "wayback.token";

/** The server's root, worked out from where the page was loaded (/ui/), so a reverse proxy's prefix works too. */
export const serverRoot = new URL("../", document.baseURI);

export class ApiError extends Error {
  /**
   * @param {"network"|"timeout"|"unauthorized"|"forbidden"|"notfound"|"refused"|"server"} kind
   */
  constructor(kind, message, { status = 0, code = null, body = null } = {}) {
    super(message);
    this.name = "ApiError";
    this.kind = kind;
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

let unauthorizedHandler = null;

/** Called once whenever the server refuses the token (401): the app signs out and says why. */
export function onUnauthorized(handler) {
  unauthorizedHandler = handler;
}

export const session = {
  get token() {
    try {
      return sessionStorage.getItem(TOKEN_KEY);
    } catch {
      return null;
    }
  },
  set token(value) {
    try {
      if (value) sessionStorage.setItem(TOKEN_KEY, value);
      else sessionStorage.removeItem(TOKEN_KEY);
    } catch {
      /* storage disabled: the token lives only as long as the page */
    }
  },
};

/** What people paste: "Bearer x", "FlyV1 x", "Authorization: Bearer x", or the token itself. */
export function cleanToken(text) {
  let t = (text || "").trim();
  t = t.replace(/^authorization:\s*/i, "");
  t = t.replace(/^(bearer|flyv1)\s+/i, "");
  return t.trim();
}

function url(path, query) {
  const u = new URL(path.replace(/^\//, ""), serverRoot);
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== "") u.searchParams.set(k, String(v));
  }
  return u;
}

function describeStatus(status, statusText) {
  return `${status}${statusText ? " " + statusText : ""}`;
}

async function failure(response, token) {
  let body = null;
  let text = "";
  try {
    text = await response.text();
    body = JSON.parse(text);
  } catch {
    body = null;
  }
  const code = body && typeof body.code === "string" ? body.code : null;
  const said = body && typeof body.error === "string" ? body.error : null;
  const status = response.status;
  const opts = { status, code, body };
  if (status === 401) {
    const e = new ApiError("unauthorized",
      "The server did not accept your token: it may have been revoked or mistyped, or the server was set up again with a new one. Sign in again with a valid token.",
      opts);
    // Only the session's own token signs the page out; a token being tried at sign-in just gets the error.
    if (token && token === session.token && unauthorizedHandler) unauthorizedHandler(e);
    return e;
  }
  if (status === 403) return new ApiError("forbidden", `Your token does not open this: ${said || "it belongs to another cluster"}.`, opts);
  if (status === 404) return new ApiError("notfound", said ? capitalise(said) + "." : `Not found (${describeStatus(status, response.statusText)}).`, opts);
  if (status === 503) {
    return new ApiError("server",
      `The server cannot reach its storage right now${said ? ": " + said : ""}. Nothing was changed; try again in a few seconds.`, opts);
  }
  if (status >= 500) {
    return new ApiError("server", `The server failed (${describeStatus(status, response.statusText)})${said ? ": " + said : ""}.`, opts);
  }
  if (said) return new ApiError("refused", capitalise(said) + (/[.!?]$/.test(said) ? "" : "."), opts);
  // Not the server's JSON: a proxy or something else answered.
  const snippet = text && text.length < 200 && !/</.test(text) ? `: ${text.trim()}` : "";
  return new ApiError("refused", `The server refused the request (${describeStatus(status, response.statusText)})${snippet}.`, opts);
}

function capitalise(s) {
  return s ? s[0].toUpperCase() + s.slice(1) : s;
}

/**
 * One call. Returns the parsed JSON (or the Response itself with raw: true). Throws ApiError.
 * timeoutMs: 0 means none (restores of big databases take as long as they take).
 */
export async function request(path, { method = "GET", query, body, raw = false, signal, timeoutMs = 30000, token = session.token } = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  const init = { method, headers, cache: "no-store", credentials: "omit", redirect: "error" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const controller = new AbortController();
  let timedOut = false;
  const timer = timeoutMs > 0 ? setTimeout(() => { timedOut = true; controller.abort(); }, timeoutMs) : null;
  if (signal) {
    if (signal.aborted) controller.abort();
    else signal.addEventListener("abort", () => controller.abort(), { once: true });
  }
  init.signal = controller.signal;
  const target = url(path, query);
  let response;
  try {
    response = await fetch(target, init);
  } catch (e) {
    if (timedOut) {
      throw new ApiError("timeout", `The server at ${serverRoot.origin} did not answer within ${Math.round(timeoutMs / 1000)} s. It may be overloaded or stuck; try again.`);
    }
    if (signal && signal.aborted) throw e;
    throw new ApiError("network",
      `Cannot reach the Wayback server at ${serverRoot.origin}. It may be stopped or restarting, or the network is down; the page works again as soon as it answers.`);
  } finally {
    if (timer && !raw) clearTimeout(timer);
  }
  if (!response.ok) {
    if (timer) clearTimeout(timer);
    throw await failure(response, token);
  }
  if (raw) {
    if (timer) clearTimeout(timer);
    return response;
  }
  if (response.status === 204) return null;
  try {
    return await response.json();
  } catch {
    throw new ApiError("server", `The server's answer to ${method} ${target.pathname} was not JSON; is this a Wayback server?`, { status: response.status });
  }
}

// --- the calls ---------------------------------------------------------------------------------------------

export const whoami = (token) => request("/api/whoami", { token });
export const clusters = () => request("/api/clusters");
export const databases = (cluster) => request("/api/databases", { query: { cluster } });
export const history = (cluster, db, buckets) => request("/api/history", { query: { cluster, db, buckets } });
export const storage = (cluster, db) => request("/api/storage", { query: { cluster, db } });

/** target: {txid: N} or {timestampMs: ms}; the timestamp goes out as RFC 3339 UTC. */
export function restorePoint(cluster, db, target) {
  const query = { cluster, db };
  if (target.txid !== undefined) query.txid = target.txid;
  else query.timestamp = new Date(target.timestampMs).toISOString();
  return request("/api/restore-point", { query });
}

/** In-place restore to a TXID, confirmed with the typed "cluster/db". */
export const restore = (cluster, db, txid, confirm) =>
  request("/api/restore", { method: "POST", query: { cluster, db }, body: { txid, confirm }, timeoutMs: 0 });

export const createCluster = (name, retention) =>
  request("/admin/clusters", { method: "POST", body: retention ? { name, retention } : { name } });
/** The admin's view of every cluster: its retention policy (`retention`) and tiers, besides what /api/clusters says. */
export const adminClusters = () => request("/admin/clusters");
/** Changes a cluster's retention (a duration or a policy of tiers); answers the cluster as adminClusters() lists it. */
export const setRetention = (cluster, retention) =>
  request(`/admin/clusters/${encodeURIComponent(cluster)}`, { method: "PATCH", body: { retention } });
export const tokens = (cluster) => request(`/admin/clusters/${encodeURIComponent(cluster)}/tokens`);
export const createToken = (cluster) => request(`/admin/clusters/${encodeURIComponent(cluster)}/tokens`, { method: "POST" });
export const revokeToken = (cluster, id) =>
  request(`/admin/clusters/${encodeURIComponent(cluster)}/tokens/${encodeURIComponent(id)}`, { method: "DELETE" });

/**
 * Downloads the database as a SQLite file at a TXID (null: the latest), reporting bytes as they arrive.
 * Returns {blob, txid} where txid is what the server says it restored (Wayback-Txid, 16 hex digits).
 */
export const download = (cluster, db, txid, onProgress, signal) =>
  fetchDatabase("/db/snapshot", { cluster, db, txid: txid ?? undefined, format: "sqlite" }, txid, onProgress, signal);

/** Downloads the SQLite database a side branch leads to (its base point with the overtaken transactions applied). */
export const downloadBranch = (cluster, db, id, onProgress, signal) =>
  fetchDatabase(`/api/branches/${encodeURIComponent(id)}/database`, { cluster, db }, null, onProgress, signal);

async function fetchDatabase(path, query, txid, onProgress, signal) {
  const response = await request(path, { query, raw: true, timeoutMs: 0, signal });
  const hex = response.headers.get("Wayback-Txid");
  const restoredTxid = hex && /^[0-9a-f]{16}$/i.test(hex) ? Number(BigInt("0x" + hex)) : txid;
  const total = Number(response.headers.get("Content-Length")) || 0;
  const parts = [];
  let received = 0;
  try {
    if (response.body && response.body.getReader) {
      const reader = response.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        parts.push(value);
        received += value.byteLength;
        if (onProgress) onProgress(received, total);
      }
    } else {
      const buffer = await response.arrayBuffer();
      parts.push(new Uint8Array(buffer));
      received = buffer.byteLength;
    }
  } catch (e) {
    if (signal && signal.aborted) throw e;
    throw new ApiError("network", `The download stopped after ${received} bytes: the connection to ${serverRoot.origin} was lost. Try again.`);
  }
  return { blob: new Blob(parts, { type: "application/vnd.sqlite3" }), txid: restoredTxid, bytes: received };
}

// --- looking inside a restore point ----------------------------------------------------------------------------

/** A read-only query at a TXID: {point, columns, rows, truncated, rowLimit, elapsedMs}. */
export const query = (cluster, db, txid, sql, limit) =>
  request("/api/query", { method: "POST", query: { cluster, db }, body: limit ? { txid, sql, limit } : { txid, sql }, timeoutMs: 0 });

/** What changed from a TXID to another (null: the latest): {from, to, schema, tables}. */
export const diff = (cluster, db, fromTxid, toTxid) =>
  request("/api/diff", { query: { cluster, db, from: fromTxid, to: toTxid ?? undefined }, timeoutMs: 0 });

/**
 * Bisects for the first transaction after which the query's result differs from its result at `goodTxid`
 * (null: the first restore point). onProbe hears each probe as the server decides it. Resolves to the answer
 * ({firstBad, lastGood, before, after, probes}).
 */
export async function bisect(cluster, db, sql, goodTxid, onProbe, signal) {
  const body = goodTxid ? { sql, good: { txid: goodTxid } } : { sql };
  const response = await request("/api/bisect", { method: "POST", query: { cluster, db }, body, raw: true, timeoutMs: 0, signal });
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (value) buffered += decoder.decode(value, { stream: !done });
    let newline;
    while ((newline = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, newline).trim();
      buffered = buffered.slice(newline + 1);
      if (!line) continue;
      const item = JSON.parse(line);
      if (item.probe && onProbe) onProbe(item.probe);
      if (item.error) throw new ApiError("refused", item.error.error, { code: item.error.code });
      if (item.found) return item.found;
    }
    if (done) break;
  }
  throw new ApiError("network", "The server ended the search without an answer; try again.");
}
