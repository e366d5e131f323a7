// The dashboard's pages: one page, routed by the URL fragment, built from the JSON API with DOM
// calls (never innerHTML of data), refreshed every REFRESH_MS while shown.
"use strict";

const REFRESH_MS = 2000;
let session = null;
let timer = null;
// Bumped on every navigation: an answer that arrives for an earlier page is dropped, so a late
// refresh never paints over the page shown now.
let generation = 0;
class Stale extends Error {}

// --- helpers ---------------------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function table(id, columns, rows) {
  const head = el("tr", {}, columns.map(([label, cls]) => el("th", { class: cls, text: label })));
  return el("table", { id }, el("thead", {}, head), el("tbody", {}, rows));
}

function duration(ms) {
  if (ms === null || ms === undefined) return "-";
  if (ms < 1000) return ms + "ms";
  const s = ms / 1000;
  if (s < 60) return s.toFixed(1) + "s";
  const m = Math.floor(s / 60);
  if (m < 60) return m + "m" + String(Math.floor(s % 60)).padStart(2, "0") + "s";
  return Math.floor(m / 60) + "h" + String(m % 60).padStart(2, "0") + "m";
}

const enc = encodeURIComponent;

function token() { return sessionStorage.getItem("domain-events-token"); }

async function api(path, options) {
  const mine = generation;
  const headers = Object.assign({}, (options && options.headers) || {});
  if (token()) headers["Authorization"] = "Bearer " + token();
  const response = await fetch("api/" + path, Object.assign({}, options, { headers }));
  if (response.status === 401) {
    document.getElementById("token-form").hidden = false;
    throw new Error("a bearer token is required");
  }
  const body = await response.json().catch(() => ({}));
  if (mine !== generation) throw new Stale("left the page");
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

async function post(path, body) {
  return api(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", "x-csrf-token": session.csrfToken || "" },
    body: JSON.stringify(body),
  });
}

function show(...nodes) {
  const main = document.getElementById("main");
  main.replaceChildren(...nodes.flat(Infinity).filter((node) => node !== null && node !== undefined));
}

function failure(error) { return el("div", { class: "error", text: String(error.message || error) }); }

function live(text) { document.getElementById("live").textContent = text; }

function every(render) {
  clearInterval(timer);
  const run = async () => {
    try {
      await render();
      live("live · updated " + new Date().toLocaleTimeString());
    } catch (error) {
      if (error instanceof Stale) return;
      show(failure(error));
      live("not updated: " + (error.message || error));
    }
  };
  run();
  timer = setInterval(run, REFRESH_MS);
}

function spark(points) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("viewBox", "0 0 160 28");
  if (points.length > 1) {
    const max = Math.max(1, ...points.map((p) => p.perSecond));
    const step = 160 / (points.length - 1);
    const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    line.setAttribute("points", points.map((p, i) => (i * step).toFixed(1) + "," + (26 - (p.perSecond / max) * 24).toFixed(1)).join(" "));
    svg.append(line);
  }
  return svg;
}

// --- overview --------------------------------------------------------------------------------

async function overview() {
  const { status, throughput } = await api("overview");
  const rates = new Map(throughput.streams.map((s) => [s.stream, s.points]));
  const groups = status.streams.flatMap((s) => s.groups.map((g) => [s, g]));
  const totals = {
    streams: status.streams.length,
    entries: status.streams.reduce((n, s) => n + s.length, 0),
    pending: groups.reduce((n, [, g]) => n + g.pending, 0),
    dead: status.deadLetters.reduce((n, d) => n + d.length, 0),
  };
  const card = (id, value, label) => el("div", { class: "card", id }, el("div", { class: "value", text: value }), el("div", { class: "label", text: label }));
  const minutes = Math.round(throughput.historyMs / 60000);
  show(
    el("div", { class: "cards" },
      card("total-streams", totals.streams, "streams"),
      card("total-entries", totals.entries, "entries"),
      card("total-pending", totals.pending, "pending"),
      card("total-dead", totals.dead, "dead letters")),
    el("h2", { text: "Streams" }),
    status.streams.length === 0 ? el("p", { class: "muted", text: "No event streams under the prefix " + status.prefix + "." }) :
    table("streams", [["Stream"], ["Category"], ["Length", "num"], ["Last entry"], ["Throughput (entries/s)"], ["Now", "num"]],
      status.streams.map((s) => {
        const points = rates.get(s.stream) || [];
        const now = points.length ? points[points.length - 1].perSecond.toFixed(2) : "-";
        return el("tr", { "data-stream": s.stream },
          el("td", { text: s.stream }), el("td", { text: s.category }),
          el("td", { class: "num length", text: s.length }),
          el("td", { text: s.lastEntry ? s.lastEntry.at : "-" }),
          el("td", {}, spark(points)), el("td", { class: "num rate", text: now }));
      })),
    el("h2", { text: "Consumer groups" }),
    groups.length === 0 ? el("p", { class: "muted", text: "No consumer groups." }) :
    table("groups", [["Stream"], ["Group"], ["Consumers", "num"], ["Lag", "num"], ["Pending", "num"], ["Oldest pending idle", "num"], ["Dead letters", "num"]],
      groups.map(([s, g]) => el("tr", { "data-group": s.category + "/" + g.group },
        el("td", { text: s.stream }), el("td", { text: g.group }),
        el("td", { class: "num consumers", text: g.consumers.length }),
        el("td", { class: "num lag", text: g.lag === null ? "?" : g.lag }),
        el("td", { class: "num pending", text: g.pending }),
        el("td", { class: "num", text: g.oldestPending ? duration(g.oldestPending.idleMs) : "-" }),
        el("td", { class: "num dead" + (g.deadLetters > 0 ? " bad" : "") },
          g.deadLetters > 0 ? el("a", { class: "dlq-link", href: "#/dlq/" + enc(s.category) + "/" + enc(g.group), text: g.deadLetters }) : "0")))),
    el("h2", { text: "Dead-letter streams" }),
    status.deadLetters.length === 0 ? el("p", { class: "muted", text: "No dead letters." }) :
    table("dead-letter-streams", [["Stream"], ["Category"], ["Group"], ["Dead letters", "num"]],
      status.deadLetters.map((d) => el("tr", { "data-group": d.category + "/" + d.group },
        el("td", {}, el("a", { href: "#/dlq/" + enc(d.category) + "/" + enc(d.group), text: d.stream })),
        el("td", { text: d.category }), el("td", { text: d.group }),
        el("td", { class: "num", text: d.length })))),
    el("p", { class: "muted", text: "Lag ?: Redis cannot tell. Throughput: entries added per second over the last " + minutes + " minutes." }),
  );
}

// --- dead letters ----------------------------------------------------------------------------

async function deadLetters(category, group) {
  const list = await api("dead-letters?category=" + enc(category) + "&group=" + enc(group));
  show(
    el("h2", { text: "Dead letters of " + group + " in " + category }),
    el("p", { class: "muted", id: "dead-letter-total", text: list.total + " dead letter(s)" + (list.total > list.letters.length ? ", the oldest " + list.letters.length + " shown" : "") }),
    list.letters.length === 0 ? el("p", { id: "no-dead-letters", text: "No dead letters." }) :
    table("dead-letters", [["Dead-lettered"], ["Type"], ["Event id"], ["Deliveries", "num"], ["Reason"]],
      list.letters.map((l) => {
        const env = l.event && l.event.envelope;
        return el("tr", { "data-id": l.id },
          el("td", {}, el("a", { class: "letter-link", href: "#/dlq/" + enc(category) + "/" + enc(group) + "/" + enc(l.id), text: l.at ? l.at.at : l.id })),
          el("td", { text: env && env.type ? env.type : "(not an event)" }),
          el("td", { text: env && env.eventId ? env.eventId : "-" }),
          el("td", { class: "num", text: l.deliveries }),
          el("td", { class: "reason", text: l.reason }));
      })),
  );
}

async function deadLetter(category, group, id) {
  clearInterval(timer);
  let letter;
  try {
    letter = await api("dead-letter?category=" + enc(category) + "&group=" + enc(group) + "&id=" + enc(id));
  } catch (error) {
    if (error instanceof Stale) return;
    show(failure(error), el("a", { href: "#/dlq/" + enc(category) + "/" + enc(group), text: "Back to the dead letters" }));
    return;
  }
  const env = letter.event && letter.event.envelope;
  const result = el("div", { id: "result" });
  const allowed = session.actionsAllowed;
  const act = (what) => async () => {
    for (const b of document.querySelectorAll(".actions button")) b.disabled = true;
    try {
      const answer = await post("dead-letters/" + what, { category, group, id });
      const done = what === "replay" ? "Replayed as entry " + answer.entryId + " of " + letter.stream + "." : "Deleted.";
      result.replaceChildren(el("div", { class: "notice", id: "action-done", text: done + " " }));
      if (env && env.eventId) result.firstChild.append(el("a", { id: "lookup-link", href: "#/lookup/event/" + enc(env.eventId), text: "Look the event up" }));
    } catch (error) {
      result.replaceChildren(failure(error));
      for (const b of document.querySelectorAll(".actions button")) b.disabled = false;
    }
  };
  show(
    el("p", {}, el("a", { href: "#/dlq/" + enc(category) + "/" + enc(group), text: "← dead letters of " + group })),
    el("h2", { text: "Dead letter " + letter.id }),
    table("letter", [["Field"], ["Value"]], [
      ["Group", letter.group], ["Stream", letter.stream], ["Entry", letter.entryId],
      ["Dead-lettered", letter.at ? letter.at.at : "-"], ["Deliveries", letter.deliveries, "deliveries"],
      ["Reason", letter.reason, "reason"], ["Type", env ? env.type : "(not an event envelope)"],
      ["Event id", env ? env.eventId : "-"], ["Idempotency key", env ? env.idempotencyKey : "-"],
    ].map(([k, v, id]) => el("tr", {}, el("th", { text: k }), el("td", { id, text: v })))),
    el("div", { class: "actions" },
      el("button", { id: "replay", class: "primary", disabled: !allowed || !letter.replayable, onclick: act("replay"), text: "Replay" }),
      el("button", { id: "delete", class: "danger", disabled: !allowed, onclick: act("delete"), text: "Delete" }),
      allowed ? null : el("span", { class: "muted", text: "Read-only: start the dashboard with --allow-actions to replay or delete." })),
    result,
    el("h3", { text: "Event" }),
    letter.event
      ? el("p", { class: "muted", text: letter.event.redaction === "sensitiveFields" ? "Fields the schema marks sensitive are redacted." : "The payload is hidden: the catalog does not declare this event type and version." })
      : el("p", { class: "muted", text: "Not a JSON event (" + letter.eventBytes + " bytes); it can only be deleted." }),
    letter.event ? el("pre", { id: "event", text: JSON.stringify(letter.event.envelope, null, 2) }) : null,
  );
}

// --- lookup ----------------------------------------------------------------------------------

function lookupForm(value) {
  const input = el("input", { id: "lookup-input", value: value || "", placeholder: "event id (UUID) or idempotency key" });
  const form = el("form", { class: "lookup", id: "lookup-form" }, input, el("button", { class: "primary", type: "submit", text: "Look up" }));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const q = input.value.trim();
    const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(q);
    location.hash = "#/lookup/" + (uuid ? "event/" : "key/") + enc(q);
  });
  return form;
}

async function lookup(kind, value) {
  const form = lookupForm(value);
  if (!kind) { clearInterval(timer); show(el("h2", { text: "Look an event up" }), form); return; }
  const query = kind === "event" ? "eventId=" + enc(value) : "idempotencyKey=" + enc(value);
  const found = await api("lookup?" + query);
  const focused = document.activeElement && document.activeElement.id === "lookup-input";
  if (focused) return; // do not replace what the user is typing
  show(
    el("h2", { text: "Look an event up" }), form,
    el("p", { class: "muted", id: "lookup-summary", text: (kind === "event" ? "Event " : "Idempotency key ") + value + ": " + found.entries.length + " entr" + (found.entries.length === 1 ? "y" : "ies") + " found among the " + found.scanned + " read" + (found.truncated ? " (search limit reached)" : "") + "." }),
    el("h3", { text: "Producer claim" + (found.idempotencyKey ? " of " + found.idempotencyKey : "") }),
    found.claims.length === 0 ? el("p", { id: "no-claim", text: "No claim: the key was never emitted, or its claim expired." }) :
    table("lookup-claims", [["Key"], ["Held by event"], ["Expires in", "num"]],
      found.claims.map((c) => el("tr", {}, el("td", { text: c.key }), el("td", { text: c.eventId }), el("td", { class: "num", text: c.ttlMs === null ? "never" : duration(c.ttlMs) })))),
    el("h3", { text: "Consumer groups" }),
    found.groups.length === 0 ? el("p", { class: "muted", text: "No consumer groups in the categories looked in." }) :
    table("lookup-groups", [["Category"], ["Group"], ["Handled"], ["Done record expires in", "num"]],
      found.groups.map((g) => el("tr", { "data-group": g.category + "/" + g.group },
        el("td", { text: g.category }), el("td", { text: g.group }),
        el("td", { class: "done " + (g.done ? "ok" : ""), text: g.done ? "done (event " + g.done.eventId + ")" : "no done record" }),
        el("td", { class: "num", text: g.done ? (g.done.ttlMs === null ? "never" : duration(g.done.ttlMs)) : "-" })))),
    el("h3", { text: "Stream entries" }),
    found.entries.length === 0 ? el("p", { class: "muted", text: "No entry found." }) :
    found.entries.map((e) => el("div", { class: "entry", "data-entry": e.id },
      el("p", {}, el("strong", { text: e.stream + " " + e.id }), " ", el("span", { class: "muted", text: e.at ? e.at.at : "" })),
      e.event ? el("pre", { text: JSON.stringify(e.event.envelope, null, 2) }) : null)),
  );
}

// --- catalog ---------------------------------------------------------------------------------

async function catalog() {
  clearInterval(timer);
  const cat = await api("catalog");
  if (!cat.loaded) { show(el("p", { class: "muted", text: "No catalog: start the dashboard with --schemas DIR." })); return; }
  show(
    el("h2", { text: "Event catalog" }),
    el("p", { class: "muted", text: cat.categories.reduce((n, c) => n + c.events.length, 0) + " events in " + cat.categories.length + " categories." }),
    cat.categories.map((c) => el("section", { class: "category", "data-category": c.name },
      el("h2", { text: c.name }), c.description ? el("p", { class: "muted", text: c.description }) : null,
      c.events.map((e) => el("div", { class: "event", "data-type": e.type },
        el("h3", {}, e.type, e.deprecated ? el("span", { class: "tag", text: "deprecated" }) : null),
        e.description ? el("p", { text: e.description }) : null,
        e.versions.map((v) => el("div", {},
          el("p", { class: "muted", text: "version " + v.version + (v.latest ? " (latest)" : "") + " · key " + v.idempotencyKey + " · correlation " + v.correlation }),
          table(null, [["Field"], ["Type"], ["Description"]], v.fields.map((f) => el("tr", {},
            el("td", {}, f.name, f.sensitive ? el("span", { class: "tag sensitive", text: "sensitive" }) : null, f.deprecated ? el("span", { class: "tag", text: "deprecated" }) : null),
            el("td", { text: f.type + (f.optional ? "?" : "") }),
            el("td", { text: f.description || "" })))))))))),
  );
}

// --- routing ---------------------------------------------------------------------------------

function route() {
  generation += 1;
  clearInterval(timer);
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  for (const a of document.querySelectorAll("header nav a")) a.classList.toggle("active", a.id === "nav-" + (parts[0] === "lookup" || parts[0] === "catalog" ? parts[0] : "overview"));
  switch (parts[0]) {
    case "dlq":
      if (parts.length >= 4) return deadLetter(parts[1], parts[2], parts[3]);
      return every(() => deadLetters(parts[1], parts[2]));
    case "lookup":
      if (parts[1]) return every(() => lookup(parts[1], parts.slice(2).join("/")));
      return lookup(null, "");
    case "catalog":
      return catalog().catch((e) => { if (!(e instanceof Stale)) show(failure(e)); });
    default:
      return every(overview);
  }
}

async function start() {
  try {
    session = await api("session");
  } catch (error) {
    show(failure(error));
    return;
  }
  document.getElementById("token-form").hidden = true;
  const mode = document.getElementById("mode");
  mode.textContent = (session.actionsAllowed ? "actions allowed" : "read-only") + " · " + session.prefix;
  mode.classList.toggle("actions", session.actionsAllowed);
  window.addEventListener("hashchange", route);
  route();
}

document.getElementById("token-form").addEventListener("submit", (e) => {
  e.preventDefault();
  sessionStorage.setItem("domain-events-token", document.getElementById("token-input").value);
  start();
});
start();
