// Report filters as the API takes them: "dimension==value;…", ';' and '\' escaped.
export const DIMENSION_LABELS = {
  page: "Page", entry_page: "Entry page", exit_page: "Exit page", channel: "Channel", source: "Source",
  utm_source: "UTM source", utm_medium: "UTM medium", utm_campaign: "UTM campaign", country: "Country",
  device: "Device", browser: "Browser", os: "OS", event_name: "Event", element: "Element", goal: "Goal",
};
const OPS = { "==": "is", "!=": "is not", "=@": "contains", "!@": "does not contain" };

export function parseFilters(text) {
  if (!text) return [];
  const parts = [];
  let cur = "";
  for (let i = 0; i < text.length; i++) {
    if (text[i] === "\\" && i + 1 < text.length) {
      cur += text[i] + text[i + 1];
      i++;
    } else if (text[i] === ";") {
      parts.push(cur);
      cur = "";
    } else cur += text[i];
  }
  parts.push(cur);
  return parts.filter((p) => p.trim()).map((p) => {
    const m = /(==|!=|=@|!@)/.exec(p);
    if (!m) return null;
    return { dimension: p.slice(0, m.index).trim(), op: m[1], value: p.slice(m.index + 2).replace(/\\(.)/g, "$1") };
  }).filter(Boolean);
}

export function formatFilters(filters) {
  return filters.map((f) => `${f.dimension}${f.op}${f.value.replace(/\\/g, "\\\\").replace(/;/g, "\\;")}`).join(";");
}

export function dimensionLabel(dimension) {
  if (dimension.startsWith("prop:")) return `Property ${dimension.slice(5)}`;
  return DIMENSION_LABELS[dimension] || dimension;
}

export function describeFilter(f) {
  return `${dimensionLabel(f.dimension)} ${OPS[f.op] || f.op} ${f.value}`;
}
