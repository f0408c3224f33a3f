// The notification centre: every notification of the caller, newest first.
import { useState } from "preact/hooks";
import { api } from "../api.js";
import { useApi } from "../hooks.js";
import { useLive } from "../live.js";
import { onLinkClick } from "../router.js";
import { formatInstant } from "../dates.js";
import { notificationHref } from "../components/Bell.jsx";
import { ErrorNote } from "../components/Message.jsx";

export function Notifications() {
  const [refresh, setRefresh] = useState(0);
  const [unreadOnly, setUnreadOnly] = useState(false);
  const list = useApi("/me/notifications", { limit: 200, unread: unreadOnly ? "true" : undefined }, refresh);
  useLive("notification", () => setRefresh((n) => n + 1), []);
  async function read(ids) {
    await api("/me/notifications/read", { method: "POST", body: ids ? { ids } : {} });
    setRefresh((n) => n + 1);
  }
  const items = (list.data && list.data.notifications) || [];
  return (
    <div class="page">
      <h1>Notifications</h1>
      <div class="toolbar">
        <label><input type="checkbox" checked={unreadOnly} onChange={(e) => setUnreadOnly(e.currentTarget.checked)} />
          Unread only</label>
        <button type="button" onClick={() => read(null)} disabled={!list.data || !list.data.unread}>Mark all read</button>
      </div>
      <ErrorNote error={list.error} />
      {list.data && !items.length && <p class="muted">Nothing here.</p>}
      <ul class="notification-list card">
        {items.map((n) => (
          <li key={n.id} class={n.read ? "" : "unread"} data-testid="notification">
            <a href={notificationHref(n)} onClick={onLinkClick}>{n.title}</a>
            <span class="muted small">{n.site || "system"} · {n.kind} · {formatInstant(n.created_at, undefined, true)}</span>
            {!n.read && <button type="button" class="link" onClick={() => read([n.id])}>Mark read</button>}
          </li>
        ))}
      </ul>
    </div>
  );
}
