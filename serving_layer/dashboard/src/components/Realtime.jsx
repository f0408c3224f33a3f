// What is happening now: visitors in the last 5 minutes, events per minute over the last
// 30 minutes and the pages being viewed — kept live by the `metrics` pushes (each carries
// the full value of the minutes it changed), the rest read again as they arrive.
import { useEffect, useMemo, useState } from "preact/hooks";
import { useApi, useThrottledCounter } from "../hooks.js";
import { useLive } from "../live.js";
import { formatInstant } from "../dates.js";
import { formatValue } from "../format.js";
import { FilterButton } from "./Breakdowns.jsx";

const MINUTES = 30;

export function Realtime({ site, tz, onFilter }) {
  const [refresh, poke] = useThrottledCounter(3000);
  const [window_, setWindow] = useState(() => windowAt(Date.now()));
  const rt = useApi(`/sites/${encodeURIComponent(site)}/realtime`, null, refresh);
  const series = useApi(`/sites/${encodeURIComponent(site)}/report`,
                        { from: window_.from, to: window_.to, granularity: "minute", metrics: "events,pageviews" });
  const [pushed, setPushed] = useState({});

  useEffect(() => {
    const t = setInterval(() => { setWindow(windowAt(Date.now())); poke(); }, 15_000);
    return () => clearInterval(t);
  }, []);
  useLive("metrics", (m) => {
    if (m.site !== site) return;
    setPushed((p) => {
      const next = { ...p };
      // The live tail's counts come first, the speed layer's after: per minute, the larger.
      for (const b of m.buckets || []) {
        const t = Date.parse(b.start);
        next[t] = { events: Math.max(b.events || 0, (next[t] && next[t].events) || 0) };
      }
      return next;
    });
    poke();
  }, [site]);

  const minutes = useMemo(() => {
    const byStart = {};
    for (const b of (series.data && series.data.buckets) || []) byStart[Date.parse(b.start)] = b;
    const end = Math.floor(Date.now() / 60_000) * 60_000;
    const out = [];
    for (let t = end - (MINUTES - 1) * 60_000; t <= end; t += 60_000) {
      out.push({ t, events: Math.max((pushed[t] && pushed[t].events) || 0, (byStart[t] && byStart[t].events) || 0) });
    }
    return out;
  }, [series.data, pushed, refresh]);
  const max = Math.max(1, ...minutes.map((m) => m.events));
  const perMinute = minutes.slice(-5).reduce((a, m) => a + m.events, 0) / 5;

  return (
    <section class="card realtime" aria-labelledby="realtime-title">
      <h2 id="realtime-title"><span class="pulse" aria-hidden="true" />Right now</h2>
      <div class="realtime-figures">
        <p><span class="big" data-testid="realtime-visitors">
          {rt.data ? formatValue("visitors", rt.data.visitors_last_5_minutes) : "…"}</span>
          <span class="muted">visitors in the last 5 minutes</span></p>
        <p><span class="big" data-testid="realtime-rate">{perMinute.toFixed(1)}</span>
          <span class="muted">events per minute (last 5 min)</span></p>
      </div>
      <svg class="minute-bars" viewBox={`0 0 ${MINUTES * 10} 60`} preserveAspectRatio="none" role="img"
           aria-label={`Events per minute over the last ${MINUTES} minutes; ${minutes[minutes.length - 1].events} this minute`}
           data-testid="minute-bars" data-total={minutes.reduce((a, m) => a + m.events, 0)}>
        {minutes.map((m, i) => {
          const h = (m.events / max) * 56;
          return (
            <rect key={m.t} x={i * 10 + 1} y={60 - h} width="8" height={h}>
              <title>{`${formatInstant(new Date(m.t).toISOString(), tz)}: ${m.events} events`}</title>
            </rect>
          );
        })}
      </svg>
      <h3>Pages viewed now</h3>
      {rt.data && rt.data.pages.length === 0 && <p class="muted">No pageview in the last 5 minutes.</p>}
      <ol class="now-pages" data-testid="now-pages">
        {((rt.data && rt.data.pages) || []).map((r) => (
          <li key={r.value}>
            <FilterButton dimension="page" value={r.value} onFilter={onFilter} />
            <span class="num" title="pageviews">{formatValue("pageviews", r.pageviews)}</span>
          </li>
        ))}
      </ol>
    </section>
  );
}

function windowAt(ms) {
  const end = Math.floor(ms / 60_000) * 60_000 + 60_000;
  return { from: new Date(end - MINUTES * 60_000).toISOString(), to: new Date(end).toISOString() };
}
