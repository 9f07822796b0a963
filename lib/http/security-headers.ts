import type { IncomingMessage, ServerResponse } from "node:http";
import helmet from "helmet";
import type { Settings } from "../../config/settings";

export type HeaderMiddleware = (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void) => void;

/** The security headers of every page and API answer, with a Content-Security-Policy that allows no inline script or style. */
export function securityHeaders(settings: Settings): HeaderMiddleware {
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
