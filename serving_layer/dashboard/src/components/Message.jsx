// A page-sized message: not found, no access, nothing yet.
export function Message({ title, children }) {
  return (
    <section class="message" aria-live="polite">
      <h1>{title}</h1>
      <p>{children}</p>
    </section>
  );
}

// An error from the API, in its own words.
export function ErrorNote({ error }) {
  if (!error) return null;
  return <p class="error" role="alert">{error.message || String(error)}</p>;
}

// A form's outcome: the API's refusal, or what was done.
export function FormStatus({ form }) {
  return (
    <>
      <ErrorNote error={form.error} />
      {form.done && <p class="ok" role="status">{form.done}</p>}
    </>
  );
}
