// Reading the API from components: the answer, its error, and whether a newer one is on
// its way (the previous answer stays shown meanwhile, so nothing flickers).
import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "./api.js";

export function useApi(path, query, refresh = 0) {
  const [state, setState] = useState({ data: null, error: null, loading: Boolean(path) });
  const key = path ? path + "?" + JSON.stringify(query || {}) : null;
  useEffect(() => {
    if (!key) return undefined;
    const controller = new AbortController();
    setState((s) => ({ ...s, loading: true }));
    api(path, { query, signal: controller.signal })
      .then((data) => setState({ data, error: null, loading: false }))
      .catch((error) => {
        if (error.name !== "AbortError") setState((s) => ({ data: s.data, error, loading: false }));
      });
    return () => controller.abort();
  }, [key, refresh]);
  return state;
}

// A counter that moves at most once per `ms` while `trigger` is called: live pushes ask
// for fresh answers without sending one request per push.
export function useThrottledCounter(ms) {
  const [n, setN] = useState(0);
  const last = useRef(0);
  const pending = useRef(null);
  useEffect(() => () => clearTimeout(pending.current), []);
  function trigger() {
    if (pending.current) return;
    const wait = Math.max(0, last.current + ms - Date.now());
    pending.current = setTimeout(() => {
      pending.current = null;
      last.current = Date.now();
      setN((x) => x + 1);
    }, wait);
  }
  return [n, trigger];
}

// Now, every `ms` milliseconds (relative times in the page stay true).
export function useNow(ms) {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms]);
  return now;
}
