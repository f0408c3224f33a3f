// A QR code (uqr computes the modules; drawn as one SVG path, no markup injected).
import { encode } from "uqr";

export function QrCode({ text, label }) {
  const { data } = encode(text, { border: 2 });
  let d = "";
  data.forEach((row, y) => row.forEach((dark, x) => { if (dark) d += `M${x} ${y}h1v1h-1z`; }));
  return (
    <svg class="qr" viewBox={`0 0 ${data.length} ${data.length}`} role="img" aria-label={label}
         shape-rendering="crispEdges">
      <rect width="100%" height="100%" fill="#fff" />
      <path d={d} fill="#000" />
    </svg>
  );
}
