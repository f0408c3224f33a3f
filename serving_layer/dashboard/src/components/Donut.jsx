// A donut of a breakdown's shares (SVG strokes; the table beside it carries the numbers).
const COLORS = ["--c1", "--c2", "--c3", "--c4", "--c5", "--c6"];

export function Donut({ rows, metric, title }) {
  const values = rows.map((r) => r[metric] || 0);
  const total = values.reduce((a, b) => a + b, 0);
  if (!total) return null;
  const r = 40;
  const circumference = 2 * Math.PI * r;
  let offset = 0;
  return (
    <svg class="donut" viewBox="0 0 100 100" role="img" aria-label={title}>
      {rows.slice(0, COLORS.length).map((row, i) => {
        const length = (values[i] / total) * circumference;
        const arc = (
          <circle key={row.value} cx="50" cy="50" r={r} fill="none" class={`donut-${i + 1}`} stroke-width="16"
                  stroke-dasharray={`${length} ${circumference - length}`} stroke-dashoffset={-offset}
                  transform="rotate(-90 50 50)">
            <title>{`${row.value}: ${Math.round((values[i] / total) * 100)}%`}</title>
          </circle>
        );
        offset += length;
        return arc;
      })}
    </svg>
  );
}
