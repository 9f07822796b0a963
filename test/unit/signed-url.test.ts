import {
  assertExpiresInSeconds,
  attachmentDisposition,
  fileUrlSignature,
  MAX_SIGNED_URL_SECONDS,
  signFileUrl,
  signingWindow,
  UrlSigner,
  verifyFileUrl,
} from "../../lib/storage/signed-url";

const SECRET = "a-test-secret-of-at-least-32-characters!";
const NOW = 1_800_000_000;
const KEY = "media/01HZX3K8Q9V7N2M4P6R8T0W2Y4/original.jpg";

function signed(claims: { key?: string; expires?: number; downloadName?: string } = {}): string {
  return signFileUrl(SECRET, { key: KEY, expires: NOW + 300, ...claims });
}

/** Replaces one query parameter (or the path) of a signed URL, the way someone editing it would. */
function edited(url: string, change: { path?: string; param?: [string, string] }): string {
  const [path, query] = url.split("?") as [string, string];
  const params = new URLSearchParams(query);
  if (change.param) params.set(change.param[0], change.param[1]);
  return `${change.path ?? path}?${params.toString()}`;
}

describe("signFileUrl", () => {
  it("makes a relative /files/ URL with the expiry and a base64url HMAC-SHA256", () => {
    const url = signed();
    expect(url).toMatch(/^\/files\/media\/01HZX3K8Q9V7N2M4P6R8T0W2Y4\/original\.jpg\?expires=1800000300&signature=[A-Za-z0-9_-]{43}$/);
  });

  it("carries the download name, percent-encoded, when there is one", () => {
    const url = signed({ downloadName: "My holiday é.jpg" });
    const params = new URLSearchParams(url.split("?")[1]);
    expect(params.get("download")).toBe("My holiday é.jpg");
  });

  it("signs key, expiry and download name, each changing the signature", () => {
    const base = fileUrlSignature(SECRET, { key: KEY, expires: NOW });
    expect(fileUrlSignature(SECRET, { key: `${KEY}x`, expires: NOW })).not.toBe(base);
    expect(fileUrlSignature(SECRET, { key: KEY, expires: NOW + 1 })).not.toBe(base);
    expect(fileUrlSignature(SECRET, { key: KEY, expires: NOW, downloadName: "a.jpg" })).not.toBe(base);
    expect(fileUrlSignature(`${SECRET}x`, { key: KEY, expires: NOW })).not.toBe(base);
  });

  it("refuses a download name that could break a header", () => {
    expect(() => signed({ downloadName: "a\r\nSet-Cookie: x=1" })).toThrow(RangeError);
    expect(() => signed({ downloadName: "" })).toThrow(RangeError);
  });
});

describe("verifyFileUrl", () => {
  it("accepts a URL it signed, until it expires", () => {
    expect(verifyFileUrl(SECRET, signed(), NOW)).toEqual({ valid: true, claims: { key: KEY, expires: NOW + 300 } });
    expect(verifyFileUrl(SECRET, signed(), NOW + 299).valid).toBe(true);
  });

  it("returns the download name it vouches for", () => {
    const result = verifyFileUrl(SECRET, signed({ downloadName: "photo.jpg" }), NOW);
    expect(result).toEqual({ valid: true, claims: { key: KEY, expires: NOW + 300, downloadName: "photo.jpg" } });
  });

  it("refuses an expired URL (at the second of expiry and after)", () => {
    expect(verifyFileUrl(SECRET, signed(), NOW + 300)).toEqual({ valid: false, reason: "expired" });
    expect(verifyFileUrl(SECRET, signed(), NOW + 10_000)).toEqual({ valid: false, reason: "expired" });
  });

  it("refuses a tampered key", () => {
    const url = edited(signed(), { path: "/files/media/01HZX3K8Q9V7N2M4P6R8T0W2Y5/original.jpg" });
    expect(verifyFileUrl(SECRET, url, NOW)).toEqual({ valid: false, reason: "bad_signature" });
  });

  it("refuses a tampered expiry", () => {
    const url = edited(signed(), { param: ["expires", String(NOW + 3600)] });
    expect(verifyFileUrl(SECRET, url, NOW)).toEqual({ valid: false, reason: "bad_signature" });
  });

  it("refuses an expired URL whose expiry was pushed forward", () => {
    const url = edited(signed(), { param: ["expires", String(NOW + 3600)] });
    expect(verifyFileUrl(SECRET, url, NOW + 400).valid).toBe(false);
  });

  it("refuses a tampered signature", () => {
    const url = signed();
    const signature = new URLSearchParams(url.split("?")[1]).get("signature")!;
    const flipped = (signature[0] === "A" ? "B" : "A") + signature.slice(1);
    expect(verifyFileUrl(SECRET, edited(url, { param: ["signature", flipped] }), NOW)).toEqual({ valid: false, reason: "bad_signature" });
  });

  it("refuses a download name added or changed after signing", () => {
    expect(verifyFileUrl(SECRET, edited(signed(), { param: ["download", "evil.html"] }), NOW).valid).toBe(false);
    expect(verifyFileUrl(SECRET, edited(signed({ downloadName: "a.jpg" }), { param: ["download", "b.jpg"] }), NOW).valid).toBe(false);
  });

  it("refuses a URL signed with another secret", () => {
    const url = signFileUrl("another-secret-also-32-characters-long!!", { key: KEY, expires: NOW + 300 });
    expect(verifyFileUrl(SECRET, url, NOW)).toEqual({ valid: false, reason: "bad_signature" });
  });

  it("refuses missing, repeated or malformed parameters", () => {
    const url = signed();
    const [path, query] = url.split("?") as [string, string];
    const params = new URLSearchParams(query);
    const without = (name: string) => {
      const copy = new URLSearchParams(params);
      copy.delete(name);
      return `${path}?${copy.toString()}`;
    };
    for (const target of [
      path,
      without("expires"),
      without("signature"),
      `${url}&expires=${NOW + 300}`,
      edited(url, { param: ["expires", "soon"] }),
      edited(url, { param: ["expires", "-1"] }),
      edited(url, { param: ["signature", "short"] }),
      `/elsewhere/${KEY}?${query}`,
      `/files/%E0%A4%A?${query}`,
    ]) {
      expect(verifyFileUrl(SECRET, target, NOW)).toEqual({ valid: false, reason: "malformed" });
    }
  });

  it("checks the raw path: dot segments are not resolved away before verifying", () => {
    // A URL signed for media/x/../../secret stays that key; nothing normalises it into another one.
    const traversal = signFileUrl(SECRET, { key: "media/x/../../secret", expires: NOW + 300 });
    const result = verifyFileUrl(SECRET, traversal, NOW);
    expect(result).toEqual({ valid: true, claims: { key: "media/x/../../secret", expires: NOW + 300 } });
    expect(verifyFileUrl(SECRET, traversal.replace("media/x/../../secret", "secret"), NOW).valid).toBe(false);
  });

  it("accepts percent-encoded segments as the same key", () => {
    const url = signed().replace("original.jpg", "original%2Ejpg");
    expect(verifyFileUrl(SECRET, url, NOW).valid).toBe(true);
  });
});

describe("signingWindow", () => {
  it("hands out one expiry per half-lifetime window, with more than half the lifetime left", () => {
    // NOW is a multiple of 450: the start of a window of a 900-second lifetime.
    expect(signingWindow(NOW, 900)).toEqual({ signedAt: NOW, expires: NOW + 900, windowSeconds: 450 });
    expect(signingWindow(NOW + 449, 900)).toEqual(signingWindow(NOW, 900));
    expect(signingWindow(NOW + 450, 900)).toEqual({ signedAt: NOW + 450, expires: NOW + 1350, windowSeconds: 450 });
    for (const now of [NOW, NOW + 1, NOW + 200, NOW + 449]) {
      const left = signingWindow(now, 900).expires - now;
      expect(left).toBeGreaterThan(450);
      expect(left).toBeLessThanOrEqual(900);
    }
  });

  it("never exceeds an odd lifetime, and keeps a window of at least a second", () => {
    const odd = signingWindow(NOW + 7, 901);
    expect(odd.windowSeconds).toBe(450);
    expect(odd.expires - odd.signedAt).toBeLessThanOrEqual(901);
    expect(signingWindow(NOW, 1).windowSeconds).toBe(1);
    expect(() => signingWindow(NOW, 0)).toThrow(RangeError);
  });
});

describe("UrlSigner", () => {
  it("signs until the end of the next window from its clock and verifies with it", () => {
    let nowMs = (NOW + 10) * 1000;
    const signer = new UrlSigner(SECRET, "/files/", () => nowMs);
    const url = signer.sign(KEY, { expiresInSeconds: 60 });
    expect(url).toContain(`expires=${NOW + 60}`);
    expect(signer.verify(url).valid).toBe(true);
    nowMs += 19_000;
    expect(signer.sign(KEY, { expiresInSeconds: 60 })).toBe(url);
    nowMs += 1_000;
    expect(signer.sign(KEY, { expiresInSeconds: 60 })).not.toBe(url);
    expect(signer.verify(url).valid).toBe(true);
    nowMs = (NOW + 60) * 1000;
    expect(signer.verify(url)).toEqual({ valid: false, reason: "expired" });
  });

  it("refuses lifetimes S3 would refuse", () => {
    expect(() => assertExpiresInSeconds(0)).toThrow(RangeError);
    expect(() => assertExpiresInSeconds(1.5)).toThrow(RangeError);
    expect(() => assertExpiresInSeconds(MAX_SIGNED_URL_SECONDS + 1)).toThrow(RangeError);
    expect(() => assertExpiresInSeconds(MAX_SIGNED_URL_SECONDS)).not.toThrow();
  });

  it("needs a secret and a prefix that starts and ends with /", () => {
    expect(() => new UrlSigner("")).toThrow();
    expect(() => new UrlSigner(SECRET, "/files")).toThrow();
  });
});

describe("attachmentDisposition", () => {
  it("quotes a plain ASCII name", () => {
    expect(attachmentDisposition("photo 1.jpg")).toBe('attachment; filename="photo 1.jpg"');
  });

  it("adds an RFC 8187 filename* for anything else, with a safe ASCII fallback", () => {
    expect(attachmentDisposition('Été "2024".jpg')).toBe(
      `attachment; filename="_t_ _2024_.jpg"; filename*=UTF-8''%C3%89t%C3%A9%20%222024%22.jpg`,
    );
    expect(attachmentDisposition("100%.jpg")).toBe(`attachment; filename="100_.jpg"; filename*=UTF-8''100%25.jpg`);
  });
});
