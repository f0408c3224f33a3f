/*! Parallax tracker: <script defer data-site="SITE" src="https://COLLECTOR/js/tracker.js"></script>
 * Pageviews (SPA navigation included), outbound-link clicks, clicks and impressions of
 * [data-parallax-element] elements, and custom events: parallax("signup", {plan: "pro"}).
 * No cookies; honours Do Not Track, Global Privacy Control and localStorage.parallax_ignore. */
(function (w, d, nav) {
  "use strict";
  var script = d.currentScript, site = script && script.getAttribute("data-site");
  if (!site) return console.warn("parallax: the script tag needs data-site");
  if (w.parallax && w.parallax.optOut) return; // loaded twice: count everything once
  var api = script.getAttribute("data-api") || new URL(script.src).origin + "/api/collect";
  var MAX_QUEUE = 100, BATCH = 20, DELAY = 1000, MAX_FAILS = 10, ATTR = "data-parallax-element";
  var queue = [], timer = 0, sending = false, fails = 0, lastUrl = null, shown;
  var pending = (w.parallax && w.parallax.q) || [];

  function ignored() {
    try { if (localStorage.parallax_ignore === "true") return true; } catch (e) { /* storage blocked */ }
    return nav.doNotTrack === "1" || w.doNotTrack === "1" || nav.globalPrivacyControl === true;
  }

  function uuid() {
    var c = w.crypto;
    if (c && c.randomUUID) return c.randomUUID(); // secure contexts only
    return "10000000-1000-4000-8000-100000000000".replace(/[018]/g, function (x) {
      var r = c && c.getRandomValues ? c.getRandomValues(new Uint8Array(1))[0] : Math.random() * 256;
      return (x ^ (r & (15 >> (x / 4)))).toString(16);
    });
  }

  function clip(v) { return typeof v === "string" ? v.slice(0, 256) : v; }

  // The collector keeps string/number/boolean properties only (schemas/event.v2.json).
  function cleanProps(props) {
    var out = {}, n = 0;
    for (var k in props) {
      var v = props[k], t = typeof v;
      if (n < 30 && (t === "string" || t === "number" || t === "boolean")) { out[k] = clip(v); n++; }
    }
    return n ? out : null;
  }

  function track(type, name, props, referrer) {
    if (ignored()) return;
    var e = { event_id: uuid(), type: type, ts: Date.now(), url: location.href.slice(0, 2048),
              referrer: ((referrer === undefined ? d.referrer : referrer) || "").slice(0, 2048) || null,
              schema_version: 2 };
    if (name) e.name = String(name).slice(0, 64);
    if (props && (props = cleanProps(props))) e.props = props;
    if (queue.push(e) > MAX_QUEUE) queue.shift(); // bounded: drop the oldest
    if (queue.length >= BATCH && !fails) flush(); else schedule(DELAY); // while backing off, wait
  }

  function schedule(ms) { if (!timer) timer = setTimeout(flush, ms); }

  function body(events) { return JSON.stringify({ site: site, events: events }); }

  // A string body is sent as text/plain: a CORS "simple" request, so no preflight.
  function flush() {
    clearTimeout(timer); timer = 0;
    if (sending || !queue.length) return;
    var batch = queue.slice(0, BATCH);
    sending = true;
    fetch(api, { method: "POST", body: body(batch), keepalive: true, credentials: "omit" }).then(function (r) {
      if (r.status === 429 || r.status >= 500) return retry(+r.headers.get("Retry-After"));
      done(batch); // 2xx, or a 4xx that no retry would fix (400, 403, 413)
    }, function () { retry(0); }).then(function () {
      sending = false;
      if (queue.length && !timer) schedule(DELAY);
    });

    function retry(seconds) {
      if (++fails > MAX_FAILS) return done(batch); // give up on this batch, keep the rest
      clearTimeout(timer);
      timer = setTimeout(flush, seconds > 0 ? seconds * 1000 : Math.min(1000 * Math.pow(2, fails), 300000));
    }
  }

  function done(batch) {
    fails = 0;
    queue = queue.filter(function (e) { return batch.indexOf(e) < 0; });
  }

  // The page may be going away: hand everything to the browser. Events of a request still
  // in flight are sent again; the pipeline drops repeated event_ids.
  function beacon() {
    clearTimeout(timer); timer = 0;
    while (queue.length) {
      var data = body(queue.splice(0, BATCH));
      if (!(nav.sendBeacon && nav.sendBeacon(api, data)))
        fetch(api, { method: "POST", body: data, keepalive: true, credentials: "omit" }).catch(function () {});
    }
  }

  function pageview() {
    var url = location.href;
    if (url === lastUrl) return; // replaceState, or hashchange and popstate for one navigation
    var referrer = lastUrl === null ? d.referrer : lastUrl; // in-app: the previous page, as a full load would
    lastUrl = url;
    track("pageview", null, null, referrer);
    shown = new WeakSet(); // impressions count once per element per page view
    if (observer) { observer.disconnect(); scan(); }
  }

  var observer = w.IntersectionObserver && new IntersectionObserver(function (entries) {
    entries.forEach(function (entry) {
      var el = entry.target;
      if (entry.intersectionRatio >= 0.5 && !shown.has(el)) {
        shown.add(el);
        observer.unobserve(el);
        track("impression", null, { element: el.getAttribute(ATTR) });
      }
    });
  }, { threshold: 0.5 });

  var scanning = 0;
  function scan() {
    scanning = 0;
    d.querySelectorAll("[" + ATTR + "]").forEach(function (el) { if (!shown.has(el)) observer.observe(el); });
  }

  function onClick(e) {
    var t = e.target, el = t.closest && t.closest("[" + ATTR + "]"), a = t.closest && t.closest("a[href]");
    if (el) track("click", null, { element: el.getAttribute(ATTR) });
    if (a && /^https?:$/.test(a.protocol) && a.host !== location.host) {
      track("click", "outbound", { url: a.href });
      beacon(); // the browser is about to leave the page
    }
  }

  ["pushState", "replaceState"].forEach(function (m) {
    var original = history[m];
    history[m] = function () {
      var result = original.apply(this, arguments);
      pageview();
      return result;
    };
  });
  w.addEventListener("popstate", pageview);
  w.addEventListener("hashchange", pageview);
  d.addEventListener("click", onClick, true);
  d.addEventListener("visibilitychange", function () { if (d.visibilityState === "hidden") beacon(); });
  w.addEventListener("pagehide", beacon);
  if (observer && w.MutationObserver) // elements an app renders later get their impressions too
    new MutationObserver(function () { scanning = scanning || setTimeout(scan, 200); })
      .observe(d.documentElement, { childList: true, subtree: true });

  var parallax = w.parallax = function (name, props) { track("custom", name, props); };
  parallax.optOut = function () { try { localStorage.parallax_ignore = "true"; } catch (e) { /* blocked */ } };
  parallax.optIn = function () { try { localStorage.removeItem("parallax_ignore"); } catch (e) { /* blocked */ } };

  pageview();
  for (var i = 0; i < pending.length; i++) parallax.apply(null, pending[i]); // calls made before the script loaded
})(window, document, navigator);
