// A site's dashboard. Its state — range, granularity, measure, comparison, filters — lives
// in the URL, so a view can be shared and reloaded as it is.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { api, apiUrl } from "../api.js";
import { RANGES, dayIn, defaultGranularity, formatInstant, rangeBounds } from "../dates.js";
import { formatFilters, parseFilters } from "../filters.js";
import { formatValue, label } from "../format.js";
import { useApi, useThrottledCounter } from "../hooks.js";
import { subscribe, useConnected, useLive } from "../live.js";
import { navigate } from "../router.js";
import { preferences, savePreferences, useUser } from "../session.js";
import { Breakdowns } from "../components/Breakdowns.jsx";
import { Chart } from "../components/Chart.jsx";
import { FilterChips } from "../components/FilterChips.jsx";
import { Freshness } from "../components/Freshness.jsx";
import { KPI_METRICS, Kpis } from "../components/Kpis.jsx";
import { Message } from "../components/Message.jsx";
import { Realtime } from "../components/Realtime.jsx";

const SETTLE_MS = 4000;
const COMPARISONS = [["previous_period", "Previous period"], ["previous_year", "Previous year"], ["off", "No comparison"]];

function readState(query, prefs) {
  const range = RANGES.some(([r]) => r === query.get("range")) ? query.get("range") : prefs.range;
  const metric = KPI_METRICS.includes(query.get("metric")) ? query.get("metric") : "visitors";
  return {
    range,
    from: query.get("from") || "",
    to: query.get("to") || "",
    granularity: query.get("granularity") || "",
    metric,
    compare: query.get("compare") || "previous_period",
    filters: parseFilters(query.get("filters") || ""),
  };
}

function writeState(site, state, replace = false) {
  const q = new URLSearchParams();
  q.set("range", state.range);
  if (state.range === "custom") {
    q.set("from", state.from);
    q.set("to", state.to);
  }
  if (state.granularity) q.set("granularity", state.granularity);
  if (state.metric !== "visitors") q.set("metric", state.metric);
  if (state.compare !== "previous_period") q.set("compare", state.compare);
  if (state.filters.length) q.set("filters", formatFilters(state.filters));
  navigate(`/sites/${encodeURIComponent(site)}?${q}`, { replace });
}

function DriftNote({ site, tz, bucket, metric }) {
  const day = bucket && bucket.final ? dayIn(tz, new Date(bucket.start)) : null;
  const drift = useApi(day ? `/sites/${encodeURIComponent(site)}/drift` : null, { day });
  if (!bucket) return <p class="hover-note muted">Hover the chart: a past day shows how far the live figures were from the corrected ones.</p>;
  const value = formatValue(metric, bucket[metric]);
  const when = formatInstant(bucket.start, tz, true);
  if (!bucket.final) {
    return <p class="hover-note" data-testid="hover-note">{when}: {value} {label(metric).toLowerCase()} · <em>provisional</em> (live figures, corrected after the day's batch run)</p>;
  }
  const measures = (drift.data && drift.data.measures) || [];
  const m = measures.find((x) => x.measure === metric) || measures[0];
  return (
    <p class="hover-note" data-testid="hover-note">
      {when}: {value} {label(metric).toLowerCase()} · <strong>final</strong>
      {drift.data && !drift.data.computed && " · no drift record for this day"}
      {m && <span data-testid="drift"> · on {day}, live said {formatValue(m.measure, m.speed)} {label(m.measure).toLowerCase()}, corrected {formatValue(m.measure, m.batch)} ({m.relative === null ? "n/a" : `${m.relative > 0 ? "+" : ""}${(m.relative * 100).toFixed(1)}%`})</span>}
    </p>
  );
}

export function Dashboard({ site, query }) {
  const { user, setUser } = useUser();
  const prefs = preferences(user);
  const state = readState(query, prefs);
  const info = useApi(`/sites/${encodeURIComponent(site)}`);
  const tz = info.data ? info.data.timezone : null;
  const [clock, setClock] = useState(0);
  const bounds = useMemo(() => (tz ? rangeBounds(state.range, tz, state) : null),
                         [tz, state.range, state.from, state.to, clock]);
  const granularity = bounds && bounds.granularities.includes(state.granularity) ? state.granularity
    : bounds && bounds.granularities.includes(defaultGranularity(state.range)) ? defaultGranularity(state.range)
      : bounds ? bounds.granularities[bounds.granularities.length - 1] : "day";
  const filters = formatFilters(state.filters);
  const [refresh, poke] = useThrottledCounter(5000);
  const [freshness, setFreshness] = useState(null);
  const [hovered, setHovered] = useState(null);
  const connected = useConnected();
  const analyst = user.is_admin || ["analyst", "admin"].includes(user.sites[site]);

  const reportQuery = bounds && {
    from: bounds.from, to: bounds.to, granularity, filters,
    metrics: KPI_METRICS.join(","), compare: state.compare === "off" ? undefined : state.compare,
  };
  const report = useApi(bounds ? `/sites/${encodeURIComponent(site)}/report` : null, reportQuery, refresh);
  const goals = info.data ? info.data.goals : [];
  const [goal, setGoal] = useState(null);
  const goalName = goal && goals.some((g) => g.name === goal) ? goal : goals[0] && goals[0].name;
  const convQuery = bounds && goalName && { dimension: "goal", from: bounds.from, to: bounds.to,
                                            metrics: "visitors,conversions,conversion_rate", limit: 100, filters };
  const conv = useApi(convQuery ? `/sites/${encodeURIComponent(site)}/breakdown` : null, convQuery, refresh);
  const cmp = report.data && report.data.comparison;
  const convBeforeQuery = convQuery && cmp && { ...convQuery, from: cmp.from, to: cmp.to };
  const convBefore = useApi(convBeforeQuery ? `/sites/${encodeURIComponent(site)}/breakdown` : null, convBeforeQuery);

  useEffect(() => subscribe(site), [site]);
  const again = useRef(null);
  useEffect(() => () => clearTimeout(again.current), []);
  useLive("metrics", (m) => {
    if (m.site !== site || !bounds || !bounds.live) return;
    poke();
    // The speed layer pushes as soon as its views are written, a moment before its progress
    // (which names the data an answer is kept for) is recorded: ask again a little later.
    if (m.source === "speed") {
      clearTimeout(again.current);
      again.current = setTimeout(poke, SETTLE_MS);
    }
  }, [site, bounds && bounds.live]);
  useLive("freshness", (f) => { if (f.site === site) setFreshness(f.freshness); }, [site]);
  useEffect(() => { // a realtime range moves with the clock
    if (state.range !== "realtime") return undefined;
    const t = setInterval(() => setClock((c) => c + 1), 30_000);
    return () => clearInterval(t);
  }, [state.range]);
  useEffect(() => { if (report.data) setFreshness(report.data.freshness); }, [report.data]);
  const saved = useRef(false);
  useEffect(() => { // remember the last site seen
    if (info.data && prefs.site !== site && !saved.current) {
      saved.current = true;
      savePreferences(user, { site }).then(setUser).catch(() => {});
    }
  }, [info.data]);

  if (info.error) {
    return <Message title={info.error.status === 404 ? "Site not found" : "Cannot load the site"}>{info.error.message}</Message>;
  }
  if (!info.data || !bounds) return <p class="boot">Loading {site}…</p>;

  const set = (changes, replace = false) => writeState(site, { ...state, ...changes }, replace);
  const addFilter = (dimension, value) => {
    if (state.filters.some((f) => f.dimension === dimension && f.op === "==" && f.value === value)) return;
    set({ filters: [...state.filters.filter((f) => f.dimension !== dimension), { dimension, op: "==", value }] });
  };
  const data = report.data;
  const conversions = conv.data && goalName && {
    goal: goalName,
    now: (conv.data.rows.find((r) => r.value === goalName) || { conversions: 0, conversion_rate: null }),
    before: convBefore.data && convBefore.data.rows.find((r) => r.value === goalName),
  };
  const exportHref = apiUrl(`/sites/${encodeURIComponent(site)}/export/report`, { ...reportQuery, format: "csv" });
  const hoveredBucket = data && hovered !== null && hovered !== undefined ? data.buckets[hovered] : null;

  return (
    <div class="dashboard" data-site={site}>
      <div class="dash-head">
        <h1>{site} <span class="muted small">{tz}</span></h1>
        <Freshness freshness={freshness} tz={tz} />
        {!connected && <p class="muted small" role="status">live updates reconnecting…</p>}
      </div>
      <form class="controls" aria-label="Report controls" onSubmit={(e) => e.preventDefault()}>
        <label>Range
          <select name="range" value={state.range} onChange={(e) => {
            const range = e.currentTarget.value;
            set(range === "custom" ? { range, from: bounds.from.slice(0, 10), to: bounds.to.slice(0, 10), granularity: "" }
              : { range, granularity: "" });
          }}>
            {RANGES.map(([r, text]) => <option key={r} value={r}>{text}</option>)}
          </select>
        </label>
        {state.range === "custom" && (
          <>
            <label>From <input type="date" name="from" value={bounds.from} max={dayIn(tz)}
                               onChange={(e) => set({ from: e.currentTarget.value })} /></label>
            <label>To <input type="date" name="to" value={bounds.to} max={dayIn(tz)}
                             onChange={(e) => set({ to: e.currentTarget.value })} /></label>
          </>
        )}
        <fieldset class="segmented">
          <legend class="visually-hidden">Granularity</legend>
          {["minute", "hour", "day"].map((g) => (
            <label key={g} class={bounds.granularities.includes(g) ? "" : "disabled"}>
              <input type="radio" name="granularity" value={g} checked={granularity === g}
                     disabled={!bounds.granularities.includes(g)} onChange={() => set({ granularity: g })} />
              <span>{g[0].toUpperCase() + g.slice(1)}</span>
            </label>
          ))}
        </fieldset>
        <label>Compare
          <select name="compare" value={state.compare} onChange={(e) => set({ compare: e.currentTarget.value })}>
            {COMPARISONS.map(([c, text]) => <option key={c} value={c}>{text}</option>)}
          </select>
        </label>
        {goals.length > 1 && (
          <label>Goal
            <select name="goal" value={goalName} onChange={(e) => setGoal(e.currentTarget.value)}>
              {goals.map((g) => <option key={g.name} value={g.name}>{g.name}</option>)}
            </select>
          </label>
        )}
        {analyst && <a class="button" href={exportHref} download data-testid="export-csv">Export CSV</a>}
      </form>
      <FilterChips filters={state.filters} onRemove={(i) => set({ filters: state.filters.filter((_, j) => j !== i) })}
                   onClear={() => set({ filters: [] })} />
      {report.error && <p class="error" role="alert">{report.error.message}</p>}
      <Realtime site={site} tz={tz} onFilter={addFilter} />
      <Kpis report={data} selected={state.metric} onSelect={(metric) => set({ metric }, true)} conversions={conversions} />
      <section class="card chart-card" aria-labelledby="chart-title">
        <div class="panel-head">
          <h2 id="chart-title">{label(state.metric)} per {granularity}</h2>
          <ul class="legend" aria-label="Legend">
            <li class="legend-final">final (batch)</li>
            <li class="legend-provisional">provisional (live)</li>
            {data && data.comparison && <li class="legend-previous">{state.compare === "previous_year" ? "previous year" : "previous period"}</li>}
          </ul>
          <label class="chart-type">Chart
            <select value={prefs.chart} onChange={(e) => savePreferences(user, { chart: e.currentTarget.value }).then(setUser)}>
              <option value="line">Line</option>
              <option value="bar">Bars</option>
            </select>
          </label>
        </div>
        {data ? (
          <Chart buckets={data.buckets} comparison={data.comparison && data.comparison.buckets} metric={state.metric}
                 tz={tz} type={prefs.chart} granularity={granularity} onHover={setHovered}
                 comparisonLabel={state.compare === "previous_year" ? "Previous year" : "Previous period"} />
        ) : <div class="chart placeholder" aria-busy="true" />}
        <DriftNote site={site} tz={tz} bucket={hoveredBucket} metric={state.metric} />
        {data && data.computed_from === "archive" && (
          <p class="muted small">Computed from the master dataset (several filters){data.archive_as_of ? `, as of ${formatInstant(data.archive_as_of, tz, true)}` : ""}.</p>
        )}
      </section>
      <Breakdowns site={site} bounds={bounds} filters={filters} refresh={refresh} onFilter={addFilter} analyst={analyst} />
    </div>
  );
}

