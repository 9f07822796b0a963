import type { IncomingMessage, ServerResponse } from "node:http";
import helmet from "helmet";
import type { Settings } from "../../config/settings";

export type HeaderMiddleware = (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void) => void;

/**
 * The security headers of every page and API answer, with a Content-Security-Policy that allows no inline script or style.
 * They depend on the settings only, so helmet computes them once and every answer gets the same list.
 */
export function securityHeaders(settings: Settings): HeaderMiddleware {
  const { set, removed } = headersOf(helmetFor(settings));
  return (_req, res, next) => {
    for (const name of removed) res.removeHeader(name);
    for (const [name, value] of set) res.setHeader(name, value);
    next();
  };
}

/** What a helmet middleware does to an answer: the headers it sets and those it removes, in order. */
function headersOf(middleware: HeaderMiddleware): { set: [string, string | number | readonly string[]][]; removed: string[] } {
  const set: [string, string | number | readonly string[]][] = [];
  const removed: string[] = [];
  const recorder = {
    setHeader(name: string, value: string | number | readonly string[]) {
      set.push([name, value]);
      return recorder;
    },
    removeHeader(name: string) {
      removed.push(name);
    },
  };
  let finished = false;
  middleware({ headers: {} } as IncomingMessage, recorder as unknown as ServerResponse, (error?: unknown) => {
    if (error) throw error;
    finished = true;
  });
  // A helmet whose headers depended on the request (a CSP nonce, say) could not be computed once.
  if (!finished) throw new Error("the security headers were not computed synchronously");
  return { set, removed };
}

function helmetFor(settings: Settings): HeaderMiddleware {
  const mediaOrigins = mediaOriginsOf(settings);
  return helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", "data:", "blob:", ...mediaOrigins],
        mediaSrc: ["'self'", "blob:", ...mediaOrigins],
        connectSrc: ["'self'", ...mediaOrigins],
        objectSrc: ["'none'"],
        baseUri: ["'self'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
      },
    },
    strictTransportSecurity: settings.publicUrl.startsWith("https:") ? { maxAge: 31_536_000, includeSubDomains: true } : false,
    referrerPolicy: { policy: "strict-origin-when-cross-origin" },
    crossOriginResourcePolicy: { policy: "same-origin" },
    xFrameOptions: { action: "deny" },
  }) as HeaderMiddleware;
}

/** Where browsers fetch media bytes from besides this origin: the S3 endpoint (presigned URLs) and a CDN for public items. */
export function mediaOriginsOf(settings: Settings): string[] {
  const origins = new Set<string>();
  if (settings.storage.kind === "s3") {
    const { endpoint, bucket, region, forcePathStyle } = settings.storage;
    if (endpoint) {
      const url = new URL(endpoint);
      origins.add(forcePathStyle ? url.origin : `${url.protocol}//${bucket}.${url.host}`);
    } else {
      origins.add(`https://${bucket}.s3.${region}.amazonaws.com`);
    }
  }
  if (settings.delivery.publicBaseUrl) origins.add(new URL(settings.delivery.publicBaseUrl).origin);
  return [...origins];
}
