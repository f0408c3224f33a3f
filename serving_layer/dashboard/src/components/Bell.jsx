// The notification bell: the unread count, kept live by the `notification` push, and the
// latest notifications in a panel (the full centre is /notifications).
import { useEffect, useRef, useState } from "preact/hooks";
import { api } from "../api.js";
import { useLive } from "../live.js";
import { navigate, onLinkClick } from "../router.js";
import { formatInstant } from "../dates.js";

export function notificationHref(n) {
  return n.site ? `/sites/${encodeURIComponent(n.site)}` : "/notifications";
}

export function Bell() {
  const [unread, setUnread] = useState(0);
  const [open, setOpen] = useState(false);
  const [items, setItems] = useState(null);
  const [toast, setToast] = useState(null);
  const panel = useRef(null);

  const refresh = () => api("/me/notifications/unread").then((a) => setUnread(a.unread)).catch(() => {});
  useEffect(() => { refresh(); }, []);
  useLive("notification", (n) => {
    setUnread((u) => u + 1);
    setItems((list) => (list ? [{ ...n, read: false }, ...list] : list));
    setToast(n);
  }, []);
  useEffect(() => {
    if (!toast) return undefined;
    const t = setTimeout(() => setToast(null), 8000);
    return () => clearTimeout(t);
  }, [toast]);
  useEffect(() => {
    if (!open) return undefined;
    api("/me/notifications", { query: { limit: 10 } }).then((a) => { setItems(a.notifications); setUnread(a.unread); })
      .catch(() => setItems([]));
    const close = (e) => { if (e.key === "Escape") setOpen(false); };
    addEventListener("keydown", close);
    return () => removeEventListener("keydown", close);
  }, [open]);

  async function markAll() {
    const a = await api("/me/notifications/read", { method: "POST", body: {} });
    setUnread(a.unread);
    setItems((list) => (list || []).map((n) => ({ ...n, read: true })));
  }

  return (
    <div class="bell">
      <button type="button" class="icon-button" aria-expanded={open} aria-controls="bell-panel"
              aria-label={`Notifications, ${unread} unread`} onClick={() => setOpen(!open)}>
        <svg aria-hidden="true" viewBox="0 0 24 24" width="18" height="18" fill="none" stroke="currentColor"
             stroke-width="2" stroke-linecap="round" stroke-linejoin="round">
          <path d="M18 8a6 6 0 0 0-12 0c0 7-3 9-3 9h18s-3-2-3-9" />
          <path d="M13.7 21a2 2 0 0 1-3.4 0" />
        </svg>
        {unread > 0 && <span class="badge" data-testid="unread">{unread > 99 ? "99+" : unread}</span>}
      </button>
      {open && (
        <div id="bell-panel" class="popover" ref={panel} role="dialog" aria-label="Notifications">
          <div class="popover-head">
            <strong>Notifications</strong>
            <button type="button" class="link" onClick={markAll} disabled={!unread}>Mark all read</button>
          </div>
          {items === null ? <p class="muted">Loading…</p> : items.length === 0 ? <p class="muted">Nothing yet.</p> : (
            <ul class="notification-list">
              {items.map((n) => (
                <li key={n.id} class={n.read ? "" : "unread"}>
                  <a href={notificationHref(n)} onClick={(e) => { setOpen(false); onLinkClick(e); }}>{n.title}</a>
                  <span class="muted small">{n.site || "system"} · {formatInstant(n.created_at, undefined, true)}</span>
                </li>
              ))}
            </ul>
          )}
          <a href="/notifications" onClick={(e) => { setOpen(false); onLinkClick(e); }}>All notifications</a>
        </div>
      )}
      {toast && (
        <div class="toast" role="status">
          <strong>{toast.kind && toast.kind.endsWith("resolved") ? "Resolved" : "Alert"}</strong>{" "}
          <span data-testid="toast-title">{toast.title}</span>
          <button type="button" class="link" onClick={() => { setToast(null); navigate(notificationHref(toast)); }}>
            Open</button>
        </div>
      )}
    </div>
  );
}
