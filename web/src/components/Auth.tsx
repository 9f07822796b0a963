import { useState } from "preact/hooks";
import { ApiError, api, formatWait } from "../api";
import { navigate, signedIn } from "../store";
import { Field, fieldSentence } from "./Field";

type Problem = { form?: string; fields: Record<string, string> };

function describe(error: unknown): Problem {
  if (!(error instanceof ApiError)) return { form: "Something went wrong. Try again.", fields: {} };
  if (error.status === 429) {
    const wait = error.retryAfterSeconds ? ` You can try again in ${formatWait(error.retryAfterSeconds)}.` : "";
    return { form: `Too many attempts: you are locked out for now.${wait}`, fields: {} };
  }
  return { form: Object.keys(error.fields).length ? undefined : error.message, fields: error.fields };
}

/** Submitting an account form: the request, then signed in and on to `next`, or the problem shown. */
function useAccountForm(request: () => ReturnType<typeof api.login>, next: string) {
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<Problem>({ fields: {} });

  async function submit(event: Event) {
    event.preventDefault();
    setBusy(true);
    setProblem({ fields: {} });
    try {
      const result = await request();
      signedIn(result.user, result.csrfToken);
      navigate(next);
    } catch (error) {
      setProblem(describe(error));
    } finally {
      setBusy(false);
    }
  }

  return { busy, problem, submit };
}

export function SignIn() {
  const [login, setLogin] = useState("");
  const [password, setPassword] = useState("");
  const { busy, problem, submit } = useAccountForm(() => api.login(login.trim(), password), "/library");

  return (
    <section class="panel narrow" aria-labelledby="page-title">
      <h1 id="page-title" tabIndex={-1}>Sign in</h1>
      <form onSubmit={submit} noValidate>
        <Field id="login" label="Username or email" value={login} onInput={setLogin} autoComplete="username" required
          error={fieldSentence("", problem.fields.login)} />
        <Field id="password" label="Password" type="password" value={password} onInput={setPassword}
          autoComplete="current-password" required error={fieldSentence("The password", problem.fields.password)} />
        {problem.form && <p class="error" role="alert">{problem.form}</p>}
        <button type="submit" class="primary" disabled={busy}>{busy ? "Signing in…" : "Sign in"}</button>
      </form>
      <p>New here? <a href="#/signup">Create an account</a>.</p>
    </section>
  );
}

export function SignUp() {
  const [username, setUsername] = useState("");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const { busy, problem, submit } = useAccountForm(() => api.register(username.trim(), email.trim(), password), "/upload");

  return (
    <section class="panel narrow" aria-labelledby="page-title">
      <h1 id="page-title" tabIndex={-1}>Create an account</h1>
      <form onSubmit={submit} noValidate>
        <Field id="username" label="Username" value={username} onInput={setUsername} autoComplete="username" required
          error={fieldSentence("This username", problem.fields.username)} />
        <Field id="email" label="Email" type="email" value={email} onInput={setEmail} autoComplete="email" required
          error={fieldSentence("This email", problem.fields.email)} />
        <Field id="new-password" label="Password" type="password" value={password} onInput={setPassword}
          autoComplete="new-password" required minLength={10}
          hint="At least 10 characters; not a common password, and not your username or email."
          error={problem.fields.password ? `This password is too weak: it ${problem.fields.password.replace(/\.$/, "")}.` : undefined} />
        {problem.form && <p class="error" role="alert">{problem.form}</p>}
        <button type="submit" class="primary" disabled={busy}>{busy ? "Creating…" : "Create account"}</button>
      </form>
      <p>Already have an account? <a href="#/signin">Sign in</a>.</p>
    </section>
  );
}
