import { useEffect } from "preact/hooks";
import { api } from "./api";
import { Account } from "./components/Account";
import { SignIn, SignUp } from "./components/Auth";
import { AdminReport } from "./components/stats/AdminReport";
import { AdminStats } from "./components/stats/AdminStats";
import { MyStats } from "./components/stats/MyStats";
import { MediaGrid } from "./components/Grid";
import { UploadPage } from "./components/Upload";
import { Viewer } from "./components/Viewer";
import { navigate, route, session, signedOut, useStore } from "./store";
import type { Route } from "./store";

const TITLES: Record<Route["name"], string> = {
  feed: "Public feed",
  library: "My library",
  upload: "Upload",
  account: "Account",
  signin: "Sign in",
  signup: "Sign up",
  media: "Media",
  myStats: "My stats",
  adminStats: "Statistics",
  adminReport: "Report",
  notfound: "Not found",
};

export function App() {
  const user = useStore(session);
  const current = useStore(route);

  // On every page change: a title for the tab, and focus on the page's heading for keyboard and screen reader users.
  useEffect(() => {
    document.title = `${TITLES[current.name]} · Shoal`;
    const heading = document.getElementById("page-title");
    if (heading && document.activeElement === document.body) heading.focus({ preventScroll: true });
  }, [current, user]);

  async function signOut() {
    try {
      await api.logout();
    } finally {
      signedOut();
      navigate("/");
    }
  }

  const needsAdmin = current.name === "adminStats" || current.name === "adminReport";
  const needsUser = needsAdmin || current.name === "library" || current.name === "upload" || current.name === "account" || current.name === "myStats";
  let page;
  if (user === undefined) page = <p role="status" class="panel">Loading…</p>;
  else if (needsUser && !user) page = <SignIn />;
  else if (current.name === "feed") page = <MediaGrid key="public" scope="public" title="Public feed" />;
  else if (current.name === "library") page = <MediaGrid key="mine" scope="mine" title="My library" />;
  else if (current.name === "upload") page = <UploadPage />;
  else if (current.name === "account") page = <Account />;
  else if (current.name === "myStats") page = <MyStats />;
  else if (needsAdmin && user?.role !== "admin")
    page = (
      <section class="panel narrow">
        <h1 id="page-title" tabIndex={-1}>For administrators</h1>
        <p>The site's statistics are for administrators. Your own figures are in <a href="#/stats">My stats</a>.</p>
      </section>
    );
  else if (current.name === "adminStats") page = <AdminStats range={current.range} />;
  else if (current.name === "adminReport") page = <AdminReport range={current.range} />;
  else if (current.name === "signin") page = <SignIn />;
  else if (current.name === "signup") page = <SignUp />;
  else if (current.name === "media") page = <Viewer id={current.id} />;
  else
    page = (
      <section class="panel narrow">
        <h1 id="page-title" tabIndex={-1}>Not found</h1>
        <p>There is no page here. <a href="#/">Go to the public feed</a>.</p>
      </section>
    );

  const link = (path: string, name: Route["name"], label: string) => (
    <li>
      <a href={`#${path}`} aria-current={current.name === name ? "page" : undefined}>{label}</a>
    </li>
  );

  return (
    <>
      <a class="skip-link" href="#main" onClick={(event) => {
        event.preventDefault();
        document.getElementById("main")?.focus();
      }}>Skip to content</a>
      <header class="site-header no-print">
        <a class="brand" href="#/">Shoal</a>
        <nav aria-label="Main">
          <ul>
            {link("/", "feed", "Public")}
            {user && link("/library", "library", "My library")}
            {user && link("/upload", "upload", "Upload")}
            {user && link("/stats", "myStats", "My stats")}
            {user?.role === "admin" && link("/admin/stats", "adminStats", "Statistics")}
            {user && link("/account", "account", "Account")}
            {user === null && link("/signin", "signin", "Sign in")}
            {user === null && link("/signup", "signup", "Sign up")}
          </ul>
        </nav>
        {user && (
          <div class="who">
            <span class="who-name">{user.username}</span>
            <button type="button" onClick={() => void signOut()}>Sign out</button>
          </div>
        )}
      </header>
      <main id="main" tabIndex={-1}>{page}</main>
    </>
  );
}
