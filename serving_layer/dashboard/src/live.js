// The one Socket.IO connection of the page (websocket only, as the server takes it): it
// authenticates with the session cookie; a site's pushes come after `subscribe`, which the
// server checks again. Subscriptions are renewed after a reconnect.
import { io } from "socket.io-client";
import { useEffect, useState } from "preact/hooks";

// Connected on the first subscription (after login: the server refuses a socket without
// a session, and a refused socket does not retry).
let socket = null;
const sites = new Map(); // site -> number of subscribers
const handlers = new Map(); // event -> Set(fn)

function connect() {
  if (socket) return socket;
  socket = io({ transports: ["websocket"], withCredentials: true });
  socket.on("connect", () => {
    for (const site of sites.keys()) socket.emit("subscribe", { site });
    emitLocal("status", { connected: true });
  });
  socket.on("disconnect", (reason) => emitLocal("status", { connected: false, reason }));
  socket.on("connect_error", (err) => emitLocal("status", { connected: false, reason: err.message }));
  for (const name of ["metrics", "freshness", "notification", "subscribed", "unsubscribed", "access_ended", "error"]) {
    socket.on(name, (data) => emitLocal(name, data));
  }
  return socket;
}

function emitLocal(name, data) {
  (handlers.get(name) || new Set()).forEach((fn) => fn(data));
}

export function disconnectLive() {
  if (socket) socket.disconnect();
  socket = null;
  sites.clear();
}

export function onLive(name, fn) {
  if (!handlers.has(name)) handlers.set(name, new Set());
  handlers.get(name).add(fn);
  return () => handlers.get(name).delete(fn);
}

export function subscribe(site) {
  const s = connect();
  sites.set(site, (sites.get(site) || 0) + 1);
  if (sites.get(site) === 1 && s.connected) s.emit("subscribe", { site });
  return () => {
    const n = (sites.get(site) || 1) - 1;
    if (n > 0) sites.set(site, n);
    else {
      sites.delete(site);
      if (s.connected) s.emit("unsubscribe", { site });
    }
  };
}

export function isConnected() {
  return Boolean(socket && socket.connected);
}

// Calls fn for each push of `name` while the component is mounted.
export function useLive(name, fn, deps) {
  useEffect(() => onLive(name, fn), deps);
}

export function useConnected() {
  const [connected, setConnected] = useState(isConnected);
  useLive("status", (s) => setConnected(s.connected), []);
  return connected;
}
