/**
 * Clean-up of the text a client supplies. Titles and descriptions are shown to other
 * people; file names and declared types are recorded for the owner and for support.
 * None of it is trusted for anything (the type is sniffed, keys are generated).
 */

/** Control characters, and the bidi controls that can disguise a name ("photo\u202Egpj.exe"). */
const CONTROLS = /[\p{Cc}\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu;

/** At most `max` code points, never cutting a surrogate pair in half. */
export function truncate(text: string, max: number): string {
  const points = Array.from(text);
  return points.length <= max ? text : points.slice(0, max).join("");
}

/** Trimmed, NFC; empty becomes null (no title rather than a blank one). */
export function cleanText(text: string | null | undefined): string | null {
  if (text === null || text === undefined) return null;
  const cleaned = text.normalize("NFC").trim();
  return cleaned === "" ? null : cleaned;
}

/** The client's file name as recorded: no control characters, at most 255 code points. */
export function cleanOriginalName(name: string | null | undefined): string | null {
  if (name == null) return null;
  return cleanText(truncate(name.normalize("NFC").replace(CONTROLS, ""), 255));
}

/** The client's declared type as recorded: lower case, no parameters or control characters, at most 100 characters. */
export function cleanDeclaredMime(mime: string | null | undefined): string | null {
  if (mime == null) return null;
  const bare = mime.replace(CONTROLS, "").split(";")[0] ?? "";
  return cleanText(truncate(bare.toLowerCase(), 100));
}
