// The filters in force, as chips: each removable (they live in the URL).
import { describeFilter } from "../filters.js";

export function FilterChips({ filters, onRemove, onClear }) {
  if (!filters.length) return null;
  return (
    <ul class="chips" aria-label="Filters">
      {filters.map((f, i) => (
        <li key={`${f.dimension}${f.op}${f.value}`} class="chip" data-testid="filter-chip">
          <span>{describeFilter(f)}</span>
          <button type="button" class="chip-remove" aria-label={`Remove filter: ${describeFilter(f)}`}
                  onClick={() => onRemove(i)}>×</button>
        </li>
      ))}
      {filters.length > 1 && <li><button type="button" class="link" onClick={onClear}>Clear all</button></li>}
    </ul>
  );
}
