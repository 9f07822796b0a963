import { useEffect, useState } from "preact/hooks";
import { ApiError, api, formatBytes } from "../api";
import type { User } from "../api";
import { navigate, signedOut } from "../store";
import { Field } from "./Field";

export function Account() {
  const [user, setUser] = useState<User | undefined>();
  useEffect(() => {
    api.me().then(({ user: found }) => setUser(found), () => undefined);
  }, []);
  const used = user?.usedBytes ?? 0;
  const quota = user?.quotaBytes ?? 0;
  return (
    <section class="panel narrow" aria-labelledby="page-title">
      <h1 id="page-title" tabIndex={-1}>Account</h1>
      {user && (
        <div class="storage">
          <h2>Storage</h2>
          <p>Signed in as <strong>{user.username}</strong>{user.email ? ` (${user.email})` : ""}.</p>
          <label for="storage-meter">{formatBytes(used)} used of {formatBytes(quota)}</label>
          <meter id="storage-meter" min={0} max={quota || 1} value={used} high={quota * 0.9} />
        </div>
      )}
      <ChangePassword />
      <DeleteAccount />
    </section>
  );
}

function ChangePassword() {
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [fields, setFields] = useState<Record<string, string>>({});
  const [message, setMessage] = useState<{ text: string; error?: boolean } | undefined>();
  const [busy, setBusy] = useState(false);

  async function submit(event: Event) {
    event.preventDefault();
    setBusy(true);
    setFields({});
    setMessage(undefined);
    try {
      await api.changePassword(current, next);
      setCurrent("");
      setNext("");
      setMessage({ text: "Your password is changed. Other devices have been signed out." });
    } catch (error) {
      if (error instanceof ApiError && Object.keys(error.fields).length) setFields(error.fields);
      else setMessage({ text: error instanceof Error ? error.message : "That did not work.", error: true });
    } finally {
      setBusy(false);
    }
  }

  return (
    <form onSubmit={submit} noValidate>
      <h2>Change password</h2>
      <Field id="current-password" label="Current password" type="password" value={current} onInput={setCurrent}
        autoComplete="current-password" required error={fields.currentPassword ? `This ${fields.currentPassword}.` : undefined} />
      <Field id="next-password" label="New password" type="password" value={next} onInput={setNext} autoComplete="new-password"
        required minLength={10} hint="At least 10 characters; not a common password."
        error={fields.newPassword ? `This password is too weak: it ${fields.newPassword}.` : undefined} />
      {message && <p class={message.error ? "error" : "success"} role={message.error ? "alert" : "status"}>{message.text}</p>}
      <button type="submit" class="primary" disabled={busy}>Change password</button>
    </form>
  );
}

function DeleteAccount() {
  const [password, setPassword] = useState("");
  const [confirming, setConfirming] = useState(false);
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);

  async function submit(event: Event) {
    event.preventDefault();
    if (!confirming) {
      setConfirming(true);
      return;
    }
    setBusy(true);
    setError(undefined);
    try {
      await api.deleteAccount(password);
      signedOut();
      navigate("/");
    } catch (caught) {
      setError(caught instanceof ApiError && caught.fields.password ? `This ${caught.fields.password}.` : caught instanceof Error ? caught.message : "That did not work.");
      setConfirming(false);
    } finally {
      setBusy(false);
    }
  }

  return (
    <form onSubmit={submit} class="danger-zone" noValidate>
      <h2>Delete account</h2>
      <p>Your account and all your media will be deleted. This cannot be undone.</p>
      <Field id="delete-password" label="Your password" type="password" value={password} onInput={setPassword}
        autoComplete="current-password" required error={error} />
      {confirming && <p role="alert" class="warning">Are you sure? Press “Delete my account” again to confirm.</p>}
      <div class="actions">
        <button type="submit" class="danger" disabled={busy || !password}>{confirming ? "Delete my account" : "Delete account…"}</button>
        {confirming && <button type="button" onClick={() => setConfirming(false)}>Cancel</button>}
      </div>
    </form>
  );
}
