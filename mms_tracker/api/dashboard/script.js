"use strict";
(function () {
  const STATUSES = ["Accepted", "Delivered", "Failed", "Rejected", "Expired"];
  const REFRESH_MS = 5000;
  const params = new URLSearchParams(location.search);
  const code = params.get("code");
  const tag = params.get("tag");
  const view = tag ? "tag" : (params.get("view") === "poison" ? "poison" : "tags");
  const state = document.getElementById("state");
  const root = document.getElementById("view");
  const main = document.getElementById("main");
  const refresh = document.getElementById("refresh");
  let timer = null;

  function href(extra) {
    const q = new URLSearchParams(extra);
    if (code) q.set("code", code);
    return "?" + q.toString();
  }
  function api(path, query) {
    const q = new URLSearchParams(query || {});
    if (code) q.set("code", code);
    const s = q.toString();
    return path + (s ? "?" + s : "");
  }
  class Unreachable extends Error {}
  async function get(path, query) {
    let response;
    try {
      response = await fetch(api(path, query), { headers: { Accept: "application/json" } });
    } catch (e) {
      throw new Unreachable("The app did not answer.");
    }
    if (response.status === 503) throw new Unreachable("Storage unreachable: the app cannot read its table storage right now.");
    if (!response.ok) {
      let detail = response.statusText;
      try { detail = (await response.json()).detail || detail; } catch (e) { /* not JSON */ }
      throw new Error(response.status + ": " + detail);
    }
    return response.json();
  }
  function el(name, attrs, children) {
    const node = document.createElement(name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    for (const c of children || []) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return node;
  }
  function svg(name, attrs, children) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    for (const c of children || []) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return node;
  }
  // Free text (a tag, a reason, an event type) wraps anywhere, at most three lines, the whole of it in a tooltip.
  function clip(text, attrs) { return el(attrs && attrs.href ? "a" : "span", { ...attrs, class: "clip", title: text }, [text]); }
  function fmt(n) { return Number(n).toLocaleString("en-US"); }
  function mask(number) {
    if (!number) return "";
    return number.length <= 6 ? "*".repeat(number.length) : number.slice(0, 2) + "*".repeat(number.length - 6) + number.slice(-4);
  }
  function table(caption, headers, rows) {
    const head = el("tr", {}, headers.map(([text, cls]) => el("th", { scope: "col", class: cls || "" }, [text])));
    const body = rows.map((cells) => el("tr", {}, cells));
    return el("div", { class: "scroll" }, [el("table", {}, [el("caption", { class: "visually-hidden" }, [caption]), el("thead", {}, [head]), el("tbody", {}, body)])]);
  }
  function stackedBar(byStatus, total) {
    const label = STATUSES.map((s) => s + " " + fmt(byStatus[s])).join(", ");
    const bar = svg("svg", { class: "bar", viewBox: "0 0 100 10", preserveAspectRatio: "none", role: "img", "aria-label": label }, [svg("title", {}, [label])]);
    let x = 0;
    for (const s of STATUSES) {
      const w = total ? (100 * byStatus[s]) / total : 0;
      if (w > 0) bar.append(svg("rect", { class: "s-" + s, x: x, y: 0, width: w, height: 10 }));
      x += w;
    }
    return bar;
  }
  function legend() {
    return el("ul", { class: "legend", "aria-label": "Legend" }, STATUSES.map((s) => el("li", {}, [el("span", { class: "swatch s-" + s, "aria-hidden": "true" }), s])));
  }
  function deliveryRate(byStatus) {
    const final = byStatus.Delivered + byStatus.Failed + byStatus.Rejected + byStatus.Expired;
    return final ? ((100 * byStatus.Delivered) / final).toFixed(1) + "%" : "–";
  }
  function seconds(v) { return v === null || v === undefined ? "–" : fmt(v) + " s"; }

  const RUNNING = ["Queued", "Sending"];
  function progress(c) {
    const done = c.sent + c.failedToSend;
    const text = fmt(done) + " of " + fmt(c.total);
    return el("progress", { max: String(Math.max(c.total, 1)), value: String(done), "aria-label": "Job " + c.campaignId + ": " + text + " processed" }, [text]);
  }
  function jobsTable(jobs) {
    const rows = jobs.map((c) => [
      el("td", {}, [clip(c.tag, { href: href({ tag: c.tag }) })]),
      el("td", {}, [c.status]),
      el("td", {}, [progress(c)]),
      el("td", { class: "num", "data-progress": c.campaignId }, [fmt(c.sent + c.failedToSend) + " / " + fmt(c.total)]),
      el("td", { class: "num hide-narrow" }, [fmt(c.failedToSend)]),
    ]);
    return table("Campaign jobs, newest first", [["Tag"], ["Status"], ["Progress"], ["Processed", "num"], ["Failed to send", "num hide-narrow"]], rows);
  }

  async function showTags() {
    const [page, jobs] = await Promise.all([
      get("tags", { pageSize: "100" }),
      get("campaigns", { pageSize: "20" }).catch((e) => { if (e instanceof Unreachable) throw e; return { items: [] }; }),
    ]);
    const out = [el("h2", {}, ["Campaigns"])];
    if (!page.items.length && !jobs.items.length) {
      out.push(el("p", { class: "empty", id: "no-campaigns" }, ["No campaigns yet. Send messages with sendOptions.tag and they appear here."]));
      return { nodes: out, active: false };
    }
    if (jobs.items.length) out.push(el("h3", {}, ["Jobs"]), jobsTable(jobs.items));
    out.push(legend());
    const rows = page.items.map((t) => [
      el("td", {}, [clip(t.tag, { href: href({ tag: t.tag }) })]),
      el("td", { class: "num", "data-total": t.tag }, [fmt(t.total)]),
      el("td", {}, [stackedBar(t.byStatus, t.total)]),
      el("td", { class: "hide-narrow" }, [el("time", { datetime: t.lastActivityAt }, [new Date(t.lastActivityAt).toLocaleString()])]),
    ]);
    out.push(table("Campaigns, newest activity first", [["Tag"], ["Messages", "num"], ["By status"], ["Last activity", "hide-narrow"]], rows));
    const running = jobs.items.some((c) => RUNNING.includes(c.status));
    return { nodes: out, active: running || page.items.some((t) => t.byStatus.Accepted > 0) };
  }
  function short(up, buckets) {
    if (up === null) return ">" + short(buckets[buckets.length - 2].upToSeconds, buckets);
    if (up % 86400 === 0) return up / 86400 + "d";
    if (up % 3600 === 0) return up / 3600 + "h";
    if (up % 60 === 0) return up / 60 + "m";
    return up + "s";
  }
  function histogram(buckets) {
    const w = 400, h = 140, pad = 24, n = buckets.length, bw = (w - pad) / n;
    const max = Math.max(1, ...buckets.map((b) => b.count));
    const label = buckets.filter((b) => b.count).map((b) => fmt(b.count) + (b.upToSeconds === null ? " slower" : " within " + b.upToSeconds + " s")).join(", ") || "No delivered messages yet";
    const chart = svg("svg", { class: "histogram", viewBox: "0 0 " + w + " " + h, role: "img", "aria-label": "Delivery latency histogram: " + label }, [svg("title", {}, ["Delivery latency: " + label])]);
    buckets.forEach((b, i) => {
      const bh = ((h - pad - 12) * b.count) / max;
      chart.append(svg("rect", { x: pad / 2 + i * bw + 1, y: h - pad - bh, width: Math.max(1, bw - 2), height: bh }));
      chart.append(svg("text", { x: pad / 2 + i * bw + bw / 2, y: h - 8, "text-anchor": "middle" }, [short(b.upToSeconds, buckets)]));
    });
    chart.append(svg("text", { x: w - 2, y: 12, "text-anchor": "end" }, ["messages per bucket, send to delivered (up to)"]));
    return chart;
  }

  async function showTag() {
    const [summary, failed] = await Promise.all([
      get("tags/summary", { tag: tag }),  // the query form: any tag travels there, "/" and dot segments included
      get("messages", { tag: tag, status: "Failed", pageSize: "1000" }),
    ]);
    const out = [el("h2", {}, ["Campaign ", el("q", { title: tag }, [tag])])];
    out.push(el("p", {}, [el("a", { href: href({ view: "tags" }) }, ["All campaigns"]), " · ",
      el("a", { id: "csv", href: api("tags/messages.csv", { tag: tag }), download: "messages.csv" }, ["Download every message as CSV"])]));
    const counts = [["Total", summary.total, "total"], ...STATUSES.map((s) => [s, summary.byStatus[s], s])];
    out.push(el("dl", { class: "counts", id: "counts" }, counts.map(([name, n, key]) =>
      el("div", {}, [el("dt", {}, [name]), el("dd", { "data-count": key }, [fmt(n)])]))));
    out.push(stackedBar(summary.byStatus, summary.total), legend());
    out.push(el("h3", {}, ["Delivery"]));
    const lat = summary.latency;
    out.push(el("dl", { class: "counts", id: "latency" }, [
      ["Delivery rate (of final)", deliveryRate(summary.byStatus), "rate"],
      ["p50 latency", seconds(lat.p50Seconds), "p50"], ["p90 latency", seconds(lat.p90Seconds), "p90"],
      ["p99 latency", seconds(lat.p99Seconds), "p99"], ["Delivered, timed", fmt(lat.count), "count"],
    ].map(([name, v, key]) => el("div", {}, [el("dt", {}, [name]), el("dd", { "data-latency": key }, [v])]))));
    out.push(el("p", {}, ["Percentiles are the upper edge of their histogram bucket."]), histogram(lat.histogram));
    out.push(el("h3", {}, ["Failure reasons"]));
    const reasons = Object.entries(summary.failureReasons);
    out.push(reasons.length
      ? table("Failure reasons", [["Reason"], ["Messages", "num"]], reasons.map(([r, n]) => [el("td", {}, [clip(r)]), el("td", { class: "num", "data-reason": r }, [fmt(n)])]))
      : el("p", { class: "empty" }, ["No failures."]));
    out.push(el("h3", {}, ["Latest failures"]));
    const latest = failed.items.slice().sort((a, b) => (a.updatedAt < b.updatedAt ? 1 : -1)).slice(0, 10);
    out.push(latest.length
      ? table("Latest failed messages", [["To"], ["Details"], ["When", "hide-narrow"], ["Message id", "hide-narrow"]], latest.map((m) => [
          el("td", {}, [mask(m.to)]), el("td", {}, [clip(m.statusDetails || "")]),
          el("td", { class: "hide-narrow" }, [el("time", { datetime: m.updatedAt }, [new Date(m.updatedAt).toLocaleString()])]),
          el("td", { class: "hide-narrow" }, [clip(m.messageId)])]))
      : el("p", { class: "empty" }, ["No failed messages."]));
    return { nodes: out, active: summary.byStatus.Accepted > 0 };
  }

  async function showPoison() {
    const page = await get("poison", { pageSize: "100" });
    const out = [el("h2", {}, ["Poison events"]), el("p", {}, ["Events that could never be processed, from the last 7 days."])];
    if (!page.items.length) {
      out.push(el("p", { class: "empty", id: "no-poison" }, ["No poison events."]));
    } else {
      out.push(table("Poison events", [["Recorded"], ["Type"], ["Reason"], ["Payload"]], page.items.map((p) => [
        el("td", {}, [el("time", { datetime: p.recordedAt }, [new Date(p.recordedAt).toLocaleString()])]),
        el("td", {}, [clip(p.eventType)]), el("td", {}, [clip(p.reason)]),
        el("td", {}, [el("details", {}, [el("summary", {}, [p.eventId || "payload"]), el("pre", {}, [p.payload])])])])));
    }
    return { nodes: out, active: false };
  }

  async function render() {
    clearTimeout(timer);
    main.setAttribute("aria-busy", "true");
    try {
      const shown = await (view === "tag" ? showTag() : view === "poison" ? showPoison() : showTags());
      root.replaceChildren(...shown.nodes);
      state.className = "";
      state.textContent = "Updated " + new Date().toLocaleTimeString() + ".";
      refresh.textContent = shown.active ? "A campaign is active: this page refreshes every " + REFRESH_MS / 1000 + " seconds." : "";
      if (shown.active) timer = setTimeout(render, REFRESH_MS);
    } catch (e) {
      state.className = "alert";
      state.setAttribute("role", "alert");
      state.textContent = e instanceof Unreachable ? e.message : "Could not load: " + e.message;
      root.replaceChildren();
      refresh.textContent = "Trying again every " + REFRESH_MS / 1000 + " seconds.";
      timer = setTimeout(render, REFRESH_MS);
    } finally {
      main.setAttribute("aria-busy", "false");
      document.body.dataset.ready = "true";
    }
  }

  document.getElementById("nav-tags").setAttribute("href", href({ view: "tags" }));
  document.getElementById("nav-poison").setAttribute("href", href({ view: "poison" }));
  document.getElementById(view === "poison" ? "nav-poison" : "nav-tags").setAttribute("aria-current", "page");
  if (tag) document.title = tag + " · mms-tracker";
  render();
})();
