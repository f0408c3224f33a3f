// The time series of one measure (uPlot): final buckets solid, provisional ones (the speed
// layer's, past the batch boundary) dashed over a hatched band, the boundary drawn as a
// marked line, the comparison period dotted underneath. Hovering a bucket reports it.
import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import { formatValue, label } from "../format.js";

export function markOnce(name) {
  if (!performance.getEntriesByName(name, "mark").length) performance.mark(name);
}

function css(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

const STEP_S = { minute: 60, hour: 3600, day: 86400 };

// Each bucket is drawn at its middle: the axis spans from the first bucket's start to the
// last one's end, so the boundary (a bucket's start) falls between final and provisional.
function seriesData(buckets, comparison, metric, step) {
  const xs = buckets.map((b) => Date.parse(b.start) / 1000 + step / 2);
  const value = (b) => (b[metric] === undefined ? null : b[metric]);
  const final = buckets.map((b) => (b.final ? value(b) : null));
  // The provisional line starts at the last final bucket, so the two lines join.
  const provisional = buckets.map((b, i) => (!b.final || (buckets[i + 1] && !buckets[i + 1].final) ? value(b) : null));
  const previous = buckets.map((_, i) => (comparison && comparison[i] ? value(comparison[i]) : null));
  return [xs, final, provisional, previous];
}

// Where the boundary falls: the start of the first provisional bucket.
export function boundaryOf(buckets) {
  const i = buckets.findIndex((b) => !b.final);
  if (i <= 0) return null;
  return Date.parse(buckets[i].start) / 1000;
}

export function Chart({ buckets, comparison, metric, tz, type = "line", granularity, onHover, comparisonLabel }) {
  const box = useRef(null);
  const plot = useRef(null);
  const band = useRef(null);
  const line = useRef(null);
  const hover = useRef(onHover);
  hover.current = onHover;
  const boundary = boundaryOf(buckets);
  const provisionalCount = buckets.filter((b) => !b.final).length;

  useEffect(() => {
    const el = box.current;
    const accent = css("--accent");
    const muted = css("--muted");
    const grid = css("--grid");
    const bars = type === "bar" ? uPlot.paths.bars({ size: [0.8, 80], align: 0 }) : undefined;
    const step = STEP_S[granularity] || 3600;
    const opts = {
      width: el.clientWidth || 600,
      height: el.clientWidth < 500 ? 200 : 260,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), tz),
      legend: { show: false },
      cursor: { points: { size: 7 }, drag: { x: false, y: false } },
      scales: { x: { time: true, range: (u, min, max) => [min - step / 2, max + step / 2] } },
      axes: [
        { stroke: muted, grid: { stroke: grid }, ticks: { stroke: grid } },
        { stroke: muted, grid: { stroke: grid }, ticks: { stroke: grid }, size: 56,
          values: (u, vals) => vals.map((v) => formatValue(metric, v, { short: true })) },
      ],
      series: [
        {},
        { label: "Final", stroke: accent, width: 2, fill: accent + "22", paths: bars, spanGaps: false },
        { label: "Provisional", stroke: accent, width: 2, dash: [6, 4], fill: accent + "10", paths: bars },
        { label: comparisonLabel || "Previous period", stroke: muted, width: 1.5, dash: [2, 4], paths: bars },
      ],
      hooks: {
        setCursor: [(u) => hover.current && hover.current(u.cursor.idx)],
        draw: [(u) => placeOverlays(u)],
      },
    };
    plot.current = new uPlot(opts, seriesData(buckets, comparison, metric, STEP_S[granularity] || 3600), el);
    markOnce("parallax:chart"); // the benchmark's "chart drawn" (bench/dashboard_bench.py)
    const resize = new ResizeObserver(() => {
      plot.current.setSize({ width: el.clientWidth, height: el.clientWidth < 500 ? 200 : 260 });
    });
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.current.destroy();
      plot.current = null;
    };
  }, [metric, type, tz, granularity]);

  useEffect(() => {
    if (plot.current) plot.current.setData(seriesData(buckets, comparison, metric, STEP_S[granularity] || 3600));
  }, [buckets, comparison]);

  // The band and the boundary line are elements over the canvas (they can be read and
  // named, unlike pixels): positioned from the plot's scale each time it draws.
  function placeOverlays(u) {
    if (!band.current || !line.current) return;
    const start = Number(band.current.dataset.start);
    const left = u.over.offsetLeft;
    const top = u.over.offsetTop;
    const height = `${u.over.clientHeight}px`;
    band.current.hidden = !start;
    line.current.hidden = !Number(line.current.dataset.at);
    if (!start) return;
    const x = Math.min(u.over.clientWidth, Math.max(0, u.valToPos(start, "x")));
    Object.assign(band.current.style, { left: `${left + x}px`, top: `${top}px`, height,
                                        width: `${Math.max(0, u.over.clientWidth - x)}px` });
    Object.assign(line.current.style, { left: `${left + x}px`, top: `${top}px`, height });
  }

  useEffect(() => {
    if (plot.current) placeOverlays(plot.current);
  }, [boundary, provisionalCount]);

  const firstProvisional = buckets.find((b) => !b.final);
  return (
    <div class="chart" data-testid="chart" data-provisional={provisionalCount} data-final={buckets.length - provisionalCount}
         data-boundary={boundary ? new Date(boundary * 1000).toISOString() : ""}>
      <div ref={box} class="chart-canvas" role="img"
           aria-label={`${label(metric)} per ${granularity}: ${buckets.length} buckets, ${provisionalCount} provisional`} />
      <div ref={band} class="provisional-band" data-testid="provisional-band" aria-hidden="true" hidden
           data-start={firstProvisional ? Date.parse(firstProvisional.start) / 1000 : ""} />
      <div ref={line} class="boundary-line" data-testid="boundary-line" data-at={boundary || ""} hidden>
        <span class="boundary-label">batch boundary</span>
      </div>
    </div>
  );
}
