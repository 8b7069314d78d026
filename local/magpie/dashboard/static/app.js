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
const PALETTE = [
  "#3f6fd8", "#2e9d5b", "#d2483f", "#d49a1f", "#8e5bd0", "#1a9aa8",
  "#e0708e", "#6b7385", "#a3b13c", "#b0653a", "#4c8fbd", "#7c3f58",
];

let lastSeq = 0;
let lastSummarySeq = -1;
const typeColours = {};

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

function shortTime(iso) {
  return iso ? iso.replace("T", " ").replace("Z", "").slice(5) : "";
}

function colourForType(type) {
  if (!(type in typeColours)) {
    typeColours[type] = PALETTE[Object.keys(typeColours).length % PALETTE.length];
  }
  return typeColours[type];
}

// --- the live feed -----------------------------------------------------------------------

function renderFeed(events) {
  const feed = document.getElementById("feed");
  for (const event of events) {
    const row = el(
      "li",
      { "data-seq": event.seq, "data-type": event["detail-type"] },
      el("span", { class: "time" }, shortTime(event.time)),
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
  return el("div", { class: "reply", "data-status": reply.Status }, ...parts);
}

function renderThumbs(message) {
  const thumbs = el("div", { class: "thumbs" });
  for (const key of message.Annotated) {
    thumbs.append(el("img", { class: "annotated", src: mediaUrl(key), alt: "annotated " + key,
                              title: "annotated reply image" }));
  }
  if (message.Annotated.length === 0) {
    for (const key of message.Images) {
      thumbs.append(el("img", { src: mediaUrl(key), alt: key, title: "received image" }));
    }
  }
  return thumbs.children.length ? thumbs : null;
}

function renderMessage(message) {
  const meta = el(
    "div", { class: "meta" },
    el("span", { class: "author" }, message.Author ? "@" + message.Author : "(unknown author)"),
    el("span", {}, message.Kind === "DIRECT_MESSAGE" ? "DM" : "mention"),
    el("span", {}, shortTime(message.Time)),
    message.Sentiment ? el("span", { class: "badge " + message.Sentiment }, message.Sentiment) : null,
    ...message.Alerts.map((kind) => el("span", { class: "badge alert" }, kind)),
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
    message.People.length ? el("div", { class: "people" }, "Recognised: " + message.People.join(", ")) : null,
    renderThumbs(message),
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
    el("span", { class: "time" }, shortTime(alert.Time)),
  );
}

// --- charts: stacked bars per minute, drawn as SVG ----------------------------------------

function drawStackedBars(svgId, legendId, buckets, series, colourOf) {
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
  const barW = Math.max(2, Math.min(28, slot * 0.8));

  chart.append(svg("line", { class: "axis", x1: pad.left, y1: pad.top + plotH,
                             x2: width - pad.right, y2: pad.top + plotH }));
  for (const tick of [0, Math.ceil(max / 2), max]) {
    const y = pad.top + plotH - (tick / max) * plotH;
    const label = svg("text", { x: pad.left - 4, y: y + 3, "text-anchor": "end" });
    label.textContent = String(tick);
    chart.append(label);
  }
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
      title.textContent = `${bucket}: ${value} ${name}`;
      rect.append(title);
      chart.append(rect);
    }
    if (i === 0 || i === buckets.length - 1 || i % Math.ceil(buckets.length / 6) === 0) {
      const label = svg("text", { x: x + barW / 2, y: height - 4, "text-anchor": "middle" });
      label.textContent = bucket.slice(11, 16);
      chart.append(label);
    }
  });
  const legend = document.getElementById(legendId);
  legend.replaceChildren(...names.map((name) => el(
    "span", {}, el("span", { class: "swatch", css: { background: colourOf(name) } }), name)));
}

// --- polling -----------------------------------------------------------------------------

async function getJson(url) {
  const response = await fetch(url, { cache: "no-store" });
  if (!response.ok) throw new Error(url + " answered " + response.status);
  return response.json();
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
    if (lastSeq !== lastSummarySeq) {
      const summary = await getJson("/api/summary");
      renderList("messages", "no-messages", summary.messages, renderMessage);
      renderList("alerts", "no-alerts", summary.alerts, renderAlert);
      const { buckets, types, sentiment } = summary.series;
      drawStackedBars("chart-types", "legend-types", buckets, types, colourForType);
      drawStackedBars("chart-sentiment", "legend-sentiment", buckets, sentiment,
                      (name) => SENTIMENT_COLOURS[name] || "#999");
      document.getElementById("counts").textContent =
        `${summary.last} events · ${summary.messages.length} messages · ${summary.alerts.length} alerts`;
      lastSummarySeq = summary.last;
    }
    status.dataset.state = "live";
    status.textContent = "live";
  } catch (error) {
    status.dataset.state = "error";
    status.textContent = "disconnected: " + error.message;
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

poll();
