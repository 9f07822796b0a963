/**
 * Serves the built web app (Vite's output, `npm run build:web` → dist/web): fingerprinted files under
 * /assets/ with a one-year immutable lifetime, index.html never cached, and index.html again for any
 * other page a browser asks for (the app routes on the client). API, file, socket.io and metrics paths
 * are never taken.
 */
import fs from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import path from "node:path";
import send from "send";

export interface WebAppOptions {
  /** The build directory; default: the first of dist/web beside the compiled or the source tree that holds a build. */
  readonly root?: string;
  /**
   * Whether to serve source maps (`*.map`, WEB_SOURCE_MAPS). Off by default: they give out the
   * app's original source to anyone, and production pages do not need them.
   */
  readonly sourceMaps?: boolean;
}

export interface WebApp {
  /** Whether this request is the web app's to answer (a GET or HEAD outside the API and the other servers). */
  handles(req: IncomingMessage): boolean;
  serve(req: IncomingMessage, res: ServerResponse): void;
  /** Where the build was found; undefined when there is none. */
  readonly root: string | undefined;
}

const RESERVED = ["/api", "/files", "/socket.io", "/metrics"];

function isBuild(directory: string): boolean {
  return fs.existsSync(path.join(directory, "index.html")) && fs.existsSync(path.join(directory, "assets"));
}

/** dist/lib/http → dist/web when compiled; lib/http → dist/web under tsx or jest. */
export function findWebBuild(): string | undefined {
  const candidates = [path.resolve(__dirname, "../../web"), path.resolve(__dirname, "../../dist/web"), path.resolve(process.cwd(), "dist/web")];
  return candidates.find(isBuild);
}

function pathnameOf(req: IncomingMessage): string {
  const raw = req.url ?? "/";
  const end = raw.search(/[?#]/);
  return end === -1 ? raw : raw.slice(0, end);
}

/** As send will read the path: percent-decoded (`.m%61p` is `.map`); undecodable paths are send's to refuse. */
function isSourceMap(pathname: string): boolean {
  let decoded = pathname;
  try {
    decoded = decodeURIComponent(pathname);
  } catch {
    // send answers 400.
  }
  return decoded.toLowerCase().endsWith(".map");
}

export function createWebApp(options: WebAppOptions = {}): WebApp {
  const root = options.root ?? findWebBuild();

  function handles(req: IncomingMessage): boolean {
    if (req.method !== "GET" && req.method !== "HEAD") return false;
    const pathname = pathnameOf(req);
    return !RESERVED.some((prefix) => pathname === prefix || pathname.startsWith(`${prefix}/`) || pathname.startsWith(`${prefix}?`));
  }

  function notFound(res: ServerResponse, message: string): void {
    const body = JSON.stringify({ error: { code: "not_found", message, fields: {} } });
    res.statusCode = 404;
    res.setHeader("Content-Type", "application/json; charset=utf-8");
    res.setHeader("Cache-Control", "no-store");
    res.end(body);
  }

  function sendIndex(req: IncomingMessage, res: ServerResponse): void {
    if (!root) {
      res.statusCode = 503;
      res.setHeader("Content-Type", "text/plain; charset=utf-8");
      res.setHeader("Cache-Control", "no-store");
      res.end("The web app is not built: run `npm run build:web` (npm start does it).\n");
      return;
    }
    res.setHeader("Cache-Control", "no-cache");
    send(req, "/index.html", { root, cacheControl: false, dotfiles: "deny" })
      .on("error", (error: { status?: number }) => {
        if (!res.headersSent) notFound(res, error.status === 404 ? "The page was not found." : "The page could not be read.");
        else res.destroy();
      })
      .pipe(res);
  }

  function serve(req: IncomingMessage, res: ServerResponse): void {
    const pathname = pathnameOf(req);
    const acceptsHtml = (req.headers.accept ?? "").includes("text/html");
    if (pathname === "/" || pathname === "/index.html") {
      sendIndex(req, res);
      return;
    }
    if (!root) {
      if (acceptsHtml) sendIndex(req, res);
      else notFound(res, "Not found.");
      return;
    }
    if (!options.sourceMaps && isSourceMap(pathname)) {
      notFound(res, "Not found.");
      return;
    }
    const asset = pathname.startsWith("/assets/");
    const stream = send(req, pathname, asset
      ? { root, maxAge: 31_536_000_000, immutable: true, dotfiles: "deny", index: false }
      : { root, cacheControl: false, dotfiles: "deny", index: false });
    if (!asset) res.setHeader("Cache-Control", "no-cache");
    stream
      .on("error", (error: { status?: number }) => {
        if (res.headersSent) {
          res.destroy();
          return;
        }
        res.removeHeader("Cache-Control");
        // A page of the app (/media/abc, /library): the app itself, which routes on the client.
        if (!asset && acceptsHtml && (error.status === 404 || error.status === 403)) sendIndex(req, res);
        else notFound(res, "Not found.");
      })
      .pipe(res);
  }

  return { handles, serve, root };
}
