// The breakdown tables: pages, sources, locations, devices, events and properties, goals,
// marked elements. Clicking a row's value filters the whole dashboard by it. Values are
// what visitors' browsers sent: shown as text, never as markup.
import { useState } from "preact/hooks";
import { apiUrl } from "../api.js";
import { useApi } from "../hooks.js";
import { dimensionLabel } from "../filters.js";
import { formatValue, label } from "../format.js";
import { Donut } from "./Donut.jsx";

const EVENT = ["visitors", "pageviews"];
const SESSION = ["sessions", "bounce_rate", "avg_duration"];

export const PANELS = [
  { id: "pages", title: "Pages", tabs: [
    { dimension: "page", label: "Top pages", metrics: EVENT },
    { dimension: "entry_page", label: "Entry pages", metrics: SESSION },
    { dimension: "exit_page", label: "Exit pages", metrics: SESSION },
  ] },
  { id: "sources", title: "Sources", tabs: [
    { dimension: "channel", label: "Channels", metrics: EVENT },
    { dimension: "source", label: "Sources", metrics: EVENT },
    { dimension: "utm_source", label: "UTM source", metrics: EVENT },
    { dimension: "utm_medium", label: "UTM medium", metrics: EVENT },
    { dimension: "utm_campaign", label: "UTM campaign", metrics: EVENT },
  ] },
  { id: "locations", title: "Locations", tabs: [{ dimension: "country", label: "Countries", metrics: EVENT }] },
  { id: "devices", title: "Devices", donut: true, tabs: [
    { dimension: "device", label: "Devices", metrics: EVENT },
    { dimension: "browser", label: "Browsers", metrics: EVENT },
    { dimension: "os", label: "OS", metrics: EVENT },
  ] },
  { id: "events", title: "Events", tabs: [
    { dimension: "event_name", label: "Custom events", metrics: ["events", "visitors"] },
    { dimension: "prop:", label: "Properties", metrics: ["events", "visitors"], property: true },
  ] },
  { id: "goals", title: "Goals", tabs: [
    { dimension: "goal", label: "Goals", metrics: ["visitors", "conversions", "conversion_rate"] },
  ] },
  { id: "elements", title: "Marked elements", tabs: [
    { dimension: "element", label: "Elements", metrics: ["clicks", "impressions", "ctr"] },
  ] },
];

export function FilterButton({ dimension, value, onFilter }) {
  return (
    <button type="button" class="row-filter" title={`Filter by ${dimensionLabel(dimension)}: ${value}`}
            onClick={() => onFilter(dimension, value)}>{value}</button>
  );
}

function Table({ answer, metrics, dimension, onFilter, analyst, site, query }) {
  const rows = answer.rows;
  const first = metrics[0];
  const max = Math.max(1, ...rows.map((r) => r[first] || 0));
  if (!rows.length) return <p class="muted empty">Nothing in this range.</p>;
  const filterable = dimension !== "goal";
  return (
    <>
      <table class="breakdown" data-dimension={dimension}>
        <thead>
          <tr>
            <th scope="col">{dimensionLabel(dimension)}</th>
            {metrics.map((m) => <th scope="col" class="num" key={m}>{label(m)}</th>)}
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.value}>
              <th scope="row" class="value-cell">
                <span class="share" style={{ width: `${((r[first] || 0) / max) * 100}%` }} aria-hidden="true" />
                {filterable ? <FilterButton dimension={dimension} value={r.value} onFilter={onFilter} />
                  : <span class="row-text">{r.value}</span>}
              </th>
              {metrics.map((m) => <td class="num" key={m}>{formatValue(m, r[m])}</td>)}
            </tr>
          ))}
          {answer.other && (
            <tr class="other">
              <th scope="row" class="value-cell"><span class="row-text">{`${answer.other.values} more`}</span></th>
              {metrics.map((m) => <td class="num" key={m}>{formatValue(m, answer.other[m])}</td>)}
            </tr>
          )}
        </tbody>
      </table>
      {analyst && (
        <a class="small" download href={apiUrl(`/sites/${encodeURIComponent(site)}/export/breakdown`,
                                              { ...query, format: "csv", limit: 1000 })}>
          Export CSV</a>
      )}
    </>
  );
}

function Panel({ panel, site, bounds, filters, refresh, onFilter, analyst }) {
  const [tab, setTab] = useState(0);
  const [property, setProperty] = useState("");
  const t = panel.tabs[tab];
  const dimension = t.property ? (property ? `prop:${property}` : null) : t.dimension;
  const query = dimension ? { dimension, from: bounds.from, to: bounds.to, metrics: t.metrics.join(","),
                              limit: 10, filters } : null;
  const answer = useApi(dimension ? `/sites/${encodeURIComponent(site)}/breakdown` : null, query, refresh);
  const id = `panel-${panel.id}`;
  return (
    <section class="card panel" aria-labelledby={`${id}-title`} data-panel={panel.id}>
      <div class="panel-head">
        <h2 id={`${id}-title`}>{panel.title}</h2>
        {panel.tabs.length > 1 && (
          <div class="tabs" role="tablist" aria-label={`${panel.title} by`}>
            {panel.tabs.map((x, i) => (
              <button type="button" role="tab" key={x.label} aria-selected={i === tab} tabIndex={i === tab ? 0 : -1}
                      id={`${id}-tab-${i}`} aria-controls={`${id}-body`}
                      onClick={() => setTab(i)}
                      onKeyDown={(e) => {
                        const d = e.key === "ArrowRight" ? 1 : e.key === "ArrowLeft" ? -1 : 0;
                        if (!d) return;
                        const next = (tab + d + panel.tabs.length) % panel.tabs.length;
                        setTab(next);
                        e.currentTarget.parentElement.children[next].focus();
                      }}>{x.label}</button>
            ))}
          </div>
        )}
      </div>
      <div id={`${id}-body`} role={panel.tabs.length > 1 ? "tabpanel" : undefined}
           aria-labelledby={panel.tabs.length > 1 ? `${id}-tab-${tab}` : undefined}
           aria-busy={answer.loading ? "true" : "false"}>
        {t.property && (
          <form class="inline-form" onSubmit={(e) => { e.preventDefault(); setProperty(e.currentTarget.key.value.trim()); }}>
            <label>Property <input name="key" placeholder="e.g. plan" maxLength={90} /></label>
            <button type="submit">Break down</button>
          </form>
        )}
        {answer.error && <p class="error" role="alert">{answer.error.message}</p>}
        {answer.data && panel.donut && tab === 0 && answer.data.rows.length > 0 && (
          <Donut rows={answer.data.rows} metric={t.metrics[0]} title={`${t.label} by ${label(t.metrics[0])}`} />
        )}
        {answer.data && dimension && <Table answer={answer.data} metrics={t.metrics} dimension={dimension}
                                            onFilter={onFilter} analyst={analyst} site={site} query={query} />}
        {!answer.data && !answer.error && dimension && <p class="muted">Loading…</p>}
      </div>
    </section>
  );
}

export function Breakdowns(props) {
  return (
    <div class="panels">
      {PANELS.map((p) => <Panel key={p.id} panel={p} {...props} />)}
    </div>
  );
}
