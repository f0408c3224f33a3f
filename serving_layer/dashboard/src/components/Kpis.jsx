// The key figures of the range, each with its change against the comparison period; a
// card picks the measure the chart shows.
import { useEffect } from "preact/hooks";
import { formatChange, formatValue, label, METRICS } from "../format.js";
import { markOnce } from "./Chart.jsx";

function Change({ metric, change }) {
  const text = formatChange(change);
  if (text === null) return <span class="change muted">{change === undefined ? "no comparison" : "no earlier data"}</span>;
  const better = (change > 0) !== Boolean(METRICS[metric] && METRICS[metric].lowerIsBetter);
  return <span class={`change ${change === 0 ? "" : better ? "up" : "down"}`}>{text}</span>;
}

export const KPI_METRICS = ["visitors", "pageviews", "sessions", "bounce_rate", "avg_duration", "pages_per_session"];

export function Kpis({ report, selected, onSelect, conversions }) {
  const totals = (report && report.totals) || {};
  const change = (report && report.comparison && report.comparison.change) || {};
  useEffect(() => { if (report) markOnce("parallax:kpi"); }, [report]); // the first figures drawn
  return (
    <section class="kpis" aria-label="Key figures">
      {KPI_METRICS.map((m) => (
        <button type="button" key={m} class="kpi" aria-pressed={selected === m} data-metric={m}
                onClick={() => onSelect(m)}>
          <span class="kpi-label">{label(m)}</span>
          <span class="kpi-value" data-testid={`kpi-${m}`}>{report ? formatValue(m, totals[m]) : "…"}</span>
          {report && <Change metric={m} change={change[m]} />}
        </button>
      ))}
      {conversions && ["conversions", "conversion_rate"].map((m) => (
        <div key={m} class="kpi static" data-metric={m}>
          <span class="kpi-label">{label(m)} <span class="muted">· {conversions.goal}</span></span>
          <span class="kpi-value" data-testid={`kpi-${m}`}>{formatValue(m, conversions.now[m])}</span>
          <Change metric={m} change={relative(conversions.now[m], conversions.before && conversions.before[m])} />
        </div>
      ))}
    </section>
  );
}

function relative(now, before) {
  if (now === null || now === undefined || !before) return null;
  return (now - before) / before;
}
