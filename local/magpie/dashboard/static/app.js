// Magpie's local dashboard: polls the JSON API once a second and redraws.
// Plain JavaScript, no build step, no third-party code. Message texts come from strangers,
// so everything is put on the page with textContent / DOM nodes, never as HTML.
"use strict";

const POLL_MS = 1000;
const MAX_FEED_ROWS = 300;
const SVG_NS = "http://www.w3.org/2000/svg";
const SENTIMENT_COLOURS = {
  POSITIVE: "#2e9d5b",
  NEGATIVE: "#d2483f",
  NEUTRAL: "#8a93a6",
  MIXED: "#d49a1f",
  UNKNOWN: "#c3c8d2",
};
// One colour per detail-type, fixed: the same type has the same colour in every run, and
// red is kept for failures (as it is for NEGATIVE in the sentiment chart).
const TYPE_COLOURS = {
  TWITTER_TWEETED: "#a7afbf",
  TWITTER_DM_RECEIVED: "#8790a3",
  TWITTER_FAVOURITED: "#c9ced8",
  TWITTER_FOLLOWED: "#b7bdc9",
  MESSAGE_RECEIVED: "#3f6fd8",
  MESSAGE_ANALYSED: "#1a9aa8",
  SEND_TWEET: "#8e5bd0",
  TWEET_SENT: "#2e9d5b",
  REPLY_SKIPPED: "#d49a1f",
  TWEET_FAILED: "#d2483f",
  MESSAGE_ANALYSIS_FAILED: "#9b2d4f",
};
// A type not in the map gets a colour from its name (stable), never from the order seen.
const SPARE_COLOURS = ["#4c8fbd", "#a3b13c", "#b0653a", "#6b7385", "#e0708e", "#3d8f6f"];

let lastSeq = 0;

// --- small DOM helpers -------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined) continue;
    if (name === "class") node.className = value;
    else if (name === "css") Object.assign(node.style, value); // CSSOM: allowed by the CSP
    else node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  return node;
}

function mediaUrl(key) {
  return "/api/media?key=" + encodeURIComponent(key);
}

// --- times: shown in the browser's zone, which the header names ---------------------------

function zoneLabel() {
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";
  const minutes = -new Date().getTimezoneOffset();
  const sign = minutes >= 0 ? "+" : "-";
  const hh = String(Math.floor(Math.abs(minutes) / 60)).padStart(2, "0");
  const mm = String(Math.abs(minutes) % 60).padStart(2, "0");
  return `times in ${zone} (UTC${sign}${hh}:${mm})`;
}

function localTime(iso, withDate = true) {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const options = { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false };
  if (withDate) Object.assign(options, { month: "short", day: "numeric" });
  return date.toLocaleString([], options);
}

function axisLabel(iso, bucketMinutes) {
  const date = new Date(iso);
  if (bucketMinutes >= 1440) return date.toLocaleDateString([], { month: "short", day: "numeric" });
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false });
}

function colourForType(type) {
  if (type in TYPE_COLOURS) return TYPE_COLOURS[type];
  let hash = 0;
  for (const char of type) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
  return SPARE_COLOURS[hash % SPARE_COLOURS.length];
}

// --- the live feed -----------------------------------------------------------------------

function renderFeed(events) {
  const feed = document.getElementById("feed");
  for (const event of events) {
    const row = el(
      "li",
      { "data-seq": event.seq, "data-type": event["detail-type"] },
      el("span", { class: "time", title: event.time }, localTime(event.time)),
      el("span", { class: "type", css: { color: colourForType(event["detail-type"]) } },
        event["detail-type"]),
      " ",
      event.replay ? el("span", { class: "replay" }, "[replay] ") : null,
      event.summary,
    );
    feed.prepend(row);
  }
  while (feed.children.length > MAX_FEED_ROWS) feed.lastElementChild.remove();
}

// --- messages and alerts -----------------------------------------------------------------

function renderReply(reply) {
  const parts = [el("span", { class: "state" }, reply.Status)];
  if (reply.Text) parts.push(el("span", { class: "reply-text" }, reply.Text));
  if (reply.Reason) parts.push(el("span", { class: "reason" }, " (" + reply.Reason + ")"));
  if (reply.Latency !== undefined && reply.Latency !== null) {
    parts.push(el("span", { class: "latency" }, ` · ${reply.Latency} s after it arrived`));
  }
  return el("div", { class: "reply", "data-status": reply.Status }, ...parts);
}

function renderThumbs(message) {
  const thumbs = el("div", { class: "thumbs" });
  for (const key of message.Images) {
    thumbs.append(el("img", { class: "received", src: mediaUrl(key), alt: "received photo " + key,
                              title: "received photo" }));
  }
  for (const key of message.Annotated) {
    thumbs.append(el("img", { class: "annotated", src: mediaUrl(key), alt: "annotated " + key,
                              title: "the reply's annotated photo" }));
  }
  return thumbs.children.length ? thumbs : null;
}

function renderRejected(message) {
  if (!message.Rejected.length) return null;
  return el("ul", { class: "rejected" }, ...message.Rejected.map((media) => el(
    "li", { "data-reason": media.Reason },
    el("span", { class: "reason-code" }, "photo refused: " + media.Reason),
    " ", el("span", { class: "url" }, media.Url),
  )));
}

function renderMessage(message) {
  // The model's own label, and beside it (not instead of it) why it raised no alert.
  const sentiment = message.Sentiment
    ? el("span", {}, el("span", { class: "badge " + message.Sentiment }, message.Sentiment),
      message.SentimentNote ? el("span", { class: "note" }, " " + message.SentimentNote) : null)
    : null;
  const meta = el(
    "div", { class: "meta" },
    el("span", { class: "author" }, message.Author ? "@" + message.Author : "(unknown author)"),
    el("span", {}, message.Kind === "DIRECT_MESSAGE" ? "DM" : "mention"),
    el("span", { class: "time", title: message.Time }, localTime(message.Time)),
    sentiment,
    ...message.Alerts.map((kind) => el("span", { class: "badge alert" }, kind)),
    message.Link ? el("a", { class: "link", href: message.Link, target: "_blank",
                             rel: "noopener noreferrer" }, "open on X") : null,
  );
  return el(
    "li",
    {
      class: "message",
      "data-message-id": message.MessageId,
      "data-sentiment": message.Sentiment || "",
    },
    meta,
    el("div", { class: "text" }, message.Text || ""),
    message.Entities.length ? el("div", { class: "entities" }, "Entities: " + message.Entities.join(", ")) : null,
    message.People.length ? el("div", { class: "people" }, "Recognised: " + message.People.join(", ")) : null,
    renderThumbs(message),
    renderRejected(message),
    renderReply(message.Reply),
  );
}

function renderList(id, emptyId, items, render) {
  const list = document.getElementById(id);
  list.replaceChildren(...items.map(render));
  document.getElementById(emptyId).hidden = items.length > 0;
}

function renderAlert(alert) {
  return el(
    "li", { "data-kind": alert.Kind },
    el("span", { class: "kind" }, alert.Kind),
    alert.Author ? "@" + alert.Author + " " : "",
    alert.Text ? "“" + alert.Text + "” " : "",
    alert.Reason ? "(" + alert.Reason + ") " : "",
    el("span", { class: "time", title: alert.Time }, localTime(alert.Time)),
  );
}

// --- the health strip --------------------------------------------------------------------

function chip(label, value, attrs) {
  return el("span", Object.assign({ class: "chip" }, attrs || {}), el("b", {}, String(value)), " " + label);
}

function renderHealth(health, replies, alertCount) {
  const webhook = health.Webhook;
  document.getElementById("webhook-total").textContent = webhook.Total;
  // Counted in the server's memory: a restart begins them again.
  document.getElementById("webhook-since").textContent = `since the server started (${localTime(webhook.Since)})`;
  document.getElementById("webhook-statuses").replaceChildren(
    ...Object.entries(webhook.ByStatus).map(([status, n]) =>
      chip(status, n, { "data-status": status, class: "chip" + (Number(status) >= 400 ? " bad" : "") })));
  document.getElementById("webhook-refusals").replaceChildren(
    ...webhook.LatestRefusals.slice(0, 3).map((r) =>
      el("li", {}, `${r.Status} ${r.Reason || ""} · ${localTime(r.Time, false)}`)));
  document.getElementById("tile-webhook").dataset.bad = String(webhook.Refused > 0);

  document.getElementById("backlog").textContent = health.Backlog;
  const dead = health.DeadLetters.Count;
  document.getElementById("dead-count").textContent = dead;
  document.getElementById("tile-dead").dataset.bad = String(dead > 0);
  document.getElementById("dead-hint").textContent =
    dead > 0 ? "retry them: " + health.DeadLetters.RedriveHint : "none parked";

  const errors = Object.entries(health.HandlerErrors);
  document.getElementById("error-count").textContent =
    errors.reduce((sum, [, e]) => sum + e.DeadLetters, 0);
  document.getElementById("tile-errors").dataset.bad = String(errors.length > 0);
  document.getElementById("handler-errors").replaceChildren(...errors.map(([target, e]) =>
    el("li", { "data-target": target, title: e.LastError }, `${target}: ${e.DeadLetters} · ${e.LastError}`)));

  document.getElementById("reply-outcomes").replaceChildren(
    ...Object.entries(replies.Outcomes).map(([status, n]) => chip(status, n, { "data-status": status })));
  document.getElementById("reply-reasons").replaceChildren(
    ...Object.entries(replies.Reasons).map(([reason, n]) => el("li", {}, `${n} × ${reason}`)));
  const latency = replies.Latency;
  document.getElementById("latency-mean").textContent =
    latency.Count ? `${latency.MeanSeconds} s` : "–";
  document.getElementById("latency-detail").textContent = latency.Count
    ? `mean of ${latency.Count}; p95 ${latency.P95Seconds} s (whole-second times)`
    : "no reply sent yet";
  document.getElementById("alert-count").textContent = alertCount;

  // What X bills today (its deliveries and our replies, priced with x_prices.json).
  const spend = health.XSpend;
  const spent = `$${spend.spent_usd.toFixed(3)}`;
  document.getElementById("x-spend").textContent = spent;
  document.getElementById("x-budget").textContent = spend.budget_usd === null
    ? `${spend.day} (UTC); no daily budget (X_DAILY_BUDGET_USD)`
    : `${spend.day} (UTC) of a $${spend.budget_usd.toFixed(2)} budget`;
  document.getElementById("tile-x-spend").dataset.bad =
    String(spend.budget_usd !== null && spend.spent_usd >= spend.budget_usd);
}

// --- charts: stacked bars on a continuous time axis, drawn as SVG -------------------------

function drawStackedBars(svgId, legendId, buckets, bucketMinutes, series, colourOf) {
  const chart = document.getElementById(svgId);
  const width = chart.clientWidth || 400;
  const height = chart.clientHeight || 160;
  const pad = { left: 28, right: 6, top: 8, bottom: 18 };
  chart.setAttribute("viewBox", `0 0 ${width} ${height}`);
  chart.replaceChildren();
  const names = Object.keys(series);
  const totals = buckets.map((_, i) => names.reduce((sum, n) => sum + series[n][i], 0));
  const max = Math.max(1, ...totals);
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const slot = plotW / Math.max(buckets.length, 1);
  const barW = Math.max(1, Math.min(28, slot * 0.8));

  chart.append(svg("line", { class: "axis", x1: pad.left, y1: pad.top + plotH,
                             x2: width - pad.right, y2: pad.top + plotH }));
  for (const tick of [0, Math.ceil(max / 2), max]) {
    const y = pad.top + plotH - (tick / max) * plotH;
    const label = svg("text", { x: pad.left - 4, y: y + 3, "text-anchor": "end" });
    label.textContent = String(tick);
    chart.append(label);
  }
  const every = Math.max(1, Math.ceil(buckets.length / 6));
  buckets.forEach((bucket, i) => {
    let y = pad.top + plotH;
    const x = pad.left + i * slot + (slot - barW) / 2;
    for (const name of names) {
      const value = series[name][i];
      if (!value) continue;
      const h = (value / max) * plotH;
      y -= h;
      const rect = svg("rect", { x, y, width: barW, height: h, fill: colourOf(name),
                                 "data-series": name, "data-bucket": bucket });
      const title = svg("title", {});
      title.textContent = `${localTime(bucket)}: ${value} ${name}`;
      rect.append(title);
      chart.append(rect);
    }
    if (i % every === 0) {
      const label = svg("text", { x: x + barW / 2, y: height - 4, "text-anchor": "middle",
                                  class: "tick", "data-bucket": bucket });
      label.textContent = axisLabel(bucket, bucketMinutes);
      chart.append(label);
    }
  });
  const legend = document.getElementById(legendId);
  legend.replaceChildren(...names.map((name) => el(
    "span", { "data-series": name },
    el("span", { class: "swatch", css: { background: colourOf(name) } }), name)));
}

// --- polling -----------------------------------------------------------------------------

async function getJson(url) {
  const response = await fetch(url, { cache: "no-store" });
  if (!response.ok) throw new Error(url + " answered " + response.status);
  return response.json();
}

function summaryQuery() {
  const params = new URLSearchParams();
  const range = document.getElementById("range").value;
  document.getElementById("custom-range").hidden = range !== "custom";
  if (range === "custom") {
    // datetime-local is the browser's zone; the API takes UTC instants.
    for (const [name, param] of [["from", "since"], ["to", "until"]]) {
      const value = document.getElementById(name).value;
      if (value) params.set(param, new Date(value).toISOString());
    }
  } else if (range) {
    params.set("since", range);
  }
  for (const name of ["kind", "sentiment", "author"]) {
    const value = document.getElementById(name).value.trim();
    if (value) params.set(name, value);
  }
  return params.toString();
}

function renderSummary(summary) {
  renderList("messages", "no-messages", summary.messages, renderMessage);
  renderList("alerts", "no-alerts", summary.alerts, renderAlert);
  renderHealth(summary.health, summary.replies, summary.alerts.length);
  const { buckets, bucket_minutes: minutes, types, sentiment } = summary.series;
  document.getElementById("bucket-width").textContent =
    buckets.length ? `(bars of ${minutes} min)` : "";
  drawStackedBars("chart-types", "legend-types", buckets, minutes, types, colourForType);
  drawStackedBars("chart-sentiment", "legend-sentiment", buckets, minutes, sentiment,
                  (name) => SENTIMENT_COLOURS[name] || "#999");
  const totals = summary.totals;
  const shown = totals.shown === totals.messages ? "" : ` (${totals.shown} in view)`;
  document.getElementById("counts").textContent =
    `${totals.events} events · ${totals.messages} messages${shown} · ${totals.alerts} alerts`;
  const mode = document.getElementById("mode");
  mode.dataset.mode = summary.mode;
  mode.textContent = summary.mode === "live"
    ? "posting replies to X (serve --live)" : "dry run: replies go to the outbox";
}

async function poll() {
  const status = document.getElementById("status");
  try {
    let page;
    do {
      page = await getJson("/api/events?after=" + lastSeq);
      renderFeed(page.events);
      lastSeq = page.last;
    } while (page.events.length >= 500);
    // Asked every time: webhook refusals and the backlog change without any new event.
    const query = summaryQuery();
    const summary = await getJson("/api/summary" + (query ? "?" + query : ""));
    renderSummary(summary);
    status.dataset.state = "connected";
    status.textContent = "connected · updated " + localTime(new Date().toISOString(), false);
  } catch (error) {
    status.dataset.state = "error";
    status.textContent = "disconnected: " + error.message;
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

document.getElementById("zone").textContent = zoneLabel();
document.getElementById("controls").addEventListener("submit", (event) => event.preventDefault());
poll();
