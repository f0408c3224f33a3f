// Form helpers: a submit handler that shows the API's refusal in its own words; the
// action gets the submitted form.
import { useState } from "preact/hooks";

export function useSubmit(action) {
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState(null);
  async function onSubmit(event) {
    if (event) event.preventDefault();
    setBusy(true);
    setError(null);
    setDone(null);
    try {
      // The form itself, taken now: an event's currentTarget is gone once it is dispatched.
      setDone((await action(event ? event.currentTarget : null)) || "Saved.");
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }
  return { onSubmit, error, busy, done, setDone };
}

export function fields(form) {
  return Object.fromEntries(new FormData(form).entries());
}
