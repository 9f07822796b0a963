import fc from "fast-check";
import { signFileUrl, verifyFileUrl } from "../../lib/storage/signed-url";
import type { FileUrlClaims } from "../../lib/storage/signed-url";
import type { PropertyGroup } from "./fuzz-parameters";

const SECRET = "a-property-test-secret-of-32-characters-or-more";
const NOW = 1_800_000_000;
const BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/** Keys of any characters, including the ones that mean something in a URL (`/`, `%`, `?`, `#`, `..`). */
const key = fc
  .array(fc.oneof(fc.string({ unit: "grapheme", minLength: 1, maxLength: 20 }), fc.constantFrom("..", ".", "%2e", "?", "#", "&", "+", " ")), {
    minLength: 1,
    maxLength: 5,
  })
  .map((segments) => segments.join("/"));

/** What assertDownloadName lets through: 1 to 255 characters, none of them a control character. */
const downloadName = fc
  .string({ unit: "grapheme", minLength: 1, maxLength: 60 })
  .filter((name) => name.length <= 255 && !/[\u0000-\u001f\u007f]/.test(name)); // eslint-disable-line no-control-regex

const claims = fc.record(
  { key, expires: fc.integer({ min: NOW + 1, max: NOW + 7 * 24 * 3600 }), downloadName },
  { requiredKeys: ["key", "expires"] },
);

function signed(at: FileUrlClaims): string {
  return signFileUrl(SECRET, at);
}

export const signedUrl: PropertyGroup = {
  subject: "signed-URL verification",
  properties: [
    {
      name: "a signed URL verifies, before it expires, to exactly what was signed",
      property: fc.property(claims, (at) => {
        const result = verifyFileUrl(SECRET, signed(at), NOW);
        return result.valid && result.claims.key === at.key && result.claims.expires === at.expires && result.claims.downloadName === at.downloadName;
      }),
    },
    {
      name: "changing any one character of the signature is refused as a bad signature",
      property: fc.property(claims, fc.nat(), fc.constantFrom(...BASE64URL), (at, index, replacement) => {
        const url = signed(at);
        const signature = new URLSearchParams(url.split("?")[1]).get("signature") ?? "";
        const where = index % signature.length;
        fc.pre(signature[where] !== replacement);
        const forged = url.replace(`signature=${signature}`, `signature=${signature.slice(0, where)}${replacement}${signature.slice(where + 1)}`);
        const result = verifyFileUrl(SECRET, forged, NOW);
        return !result.valid && result.reason === "bad_signature";
      }),
    },
    {
      name: "changing any one character of the path, expiry or download name is never accepted",
      property: fc.property(claims, fc.nat(), fc.constantFrom(...BASE64URL, "/", "%", "."), (at, index, replacement) => {
        const url = signed(at);
        const signatureAt = url.indexOf("signature=");
        // Anything before the signature: the path after /files/, and the query up to it.
        const where = "/files/".length + (index % (signatureAt - "/files/".length));
        fc.pre(url[where] !== replacement && url[where] !== "?" && url[where] !== "&" && url[where] !== "=");
        const edited = `${url.slice(0, where)}${replacement}${url.slice(where + 1)}`;
        const result = verifyFileUrl(SECRET, edited, NOW);
        return !result.valid || (result.claims.key === at.key && result.claims.expires === at.expires && result.claims.downloadName === at.downloadName);
      }),
    },
    {
      name: "a URL signed with another secret is refused",
      property: fc.property(claims, fc.string({ minLength: 1 }), (at, otherSecret) => {
        fc.pre(otherSecret !== SECRET);
        const result = verifyFileUrl(SECRET, signFileUrl(otherSecret, at), NOW);
        return !result.valid && result.reason === "bad_signature";
      }),
    },
    {
      name: "a correctly signed URL is refused as expired from its expiry on",
      property: fc.property(claims, fc.nat({ max: 10 ** 6 }), (at, late) => {
        const result = verifyFileUrl(SECRET, signed(at), at.expires + late);
        return !result.valid && result.reason === "expired";
      }),
    },
    {
      name: "any request target not signed here is refused with a reason, never an error",
      property: fc.property(
        fc.oneof(
          fc.string(),
          fc.tuple(fc.string(), fc.string()).map(([path, query]) => `/files/${path}?${query}`),
          fc
            .tuple(fc.webPath(), fc.webQueryParameters(), fc.string({ unit: fc.constantFrom(...BASE64URL), minLength: 43, maxLength: 43 }))
            .map(([path, query, signature]) => `/files${path}?${query}&expires=${NOW + 5}&signature=${signature}`),
        ),
        (target) => {
          const result = verifyFileUrl(SECRET, target, NOW);
          return !result.valid && ["malformed", "expired", "bad_signature"].includes(result.reason);
        },
      ),
    },
  ],
};
