/**
 * The file name a browser is offered when the owner downloads an original. The client's
 * name is kept for recognition only: path parts, control and reserved characters go, and
 * the extension is the one of the stored object (from the sniffed type), never the
 * client's, so "invoice.pdf.exe" uploaded as a JPEG downloads as "invoice.pdf.jpg".
 */

const MAX_BASE_CODE_POINTS = 100;
// Control characters, characters Windows/macOS refuse in names, and quotes/semicolons that
// would need escaping in a Content-Disposition header.
const UNSAFE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}"*/:;<>?\\|]/gu;

export function safeDownloadName(originalName: string | null, storedKey: string, fallbackBase: string): string {
  const extension = /\.([a-z0-9]{1,5})$/.exec(storedKey)?.[1];
  let base = (originalName ?? "").normalize("NFC");
  // Only the last path part: a name such as "C:\\Users\\me\\photo.jpg" or "../../x" says where it came from, not what it is.
  base = base.split(/[/\\]/).pop() ?? "";
  base = base.replace(UNSAFE, "").replace(/\s+/g, " ").trim();
  // The client's extension goes; a name that is only an extension (".bashrc") keeps nothing.
  base = base.replace(/\.[^.]*$/, "").replace(/^[.\s]+|[.\s]+$/g, "");
  base = Array.from(base).slice(0, MAX_BASE_CODE_POINTS).join("").trim();
  if (base === "") base = fallbackBase;
  return extension ? `${base}.${extension}` : base;
}
