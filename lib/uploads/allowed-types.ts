import type { MediaKind } from "../../config/settings";

export interface AcceptedType {
  readonly mime: string;
  readonly kind: MediaKind;
  /** The extension stored objects get; never the client's. */
  readonly extension: string;
}

/**
 * What may be uploaded, by the MIME type sniffed from the content (file-type). Anything
 * else — SVG (a script carrier), text, HTML, PHP, archives, executables — is refused
 * whatever its name or declared type.
 */
const ACCEPTED: readonly AcceptedType[] = [
  { mime: "image/jpeg", kind: "image", extension: "jpg" },
  { mime: "image/png", kind: "image", extension: "png" },
  { mime: "image/gif", kind: "image", extension: "gif" },
  { mime: "image/webp", kind: "image", extension: "webp" },
  { mime: "image/avif", kind: "image", extension: "avif" },
  { mime: "image/heic", kind: "image", extension: "heic" },
  { mime: "image/heif", kind: "image", extension: "heif" },
  // Multi-page files are accepted: the first page is the image.
  { mime: "image/tiff", kind: "image", extension: "tif" },
  { mime: "video/mp4", kind: "video", extension: "mp4" },
  { mime: "video/quicktime", kind: "video", extension: "mov" },
  { mime: "video/webm", kind: "video", extension: "webm" },
  { mime: "video/x-matroska", kind: "video", extension: "mkv" },
  { mime: "audio/mpeg", kind: "audio", extension: "mp3" },
  { mime: "audio/aac", kind: "audio", extension: "aac" },
  { mime: "audio/x-m4a", kind: "audio", extension: "m4a" },
  { mime: "audio/mp4", kind: "audio", extension: "m4a" },
  { mime: "audio/ogg", kind: "audio", extension: "ogg" },
  { mime: "audio/opus", kind: "audio", extension: "opus" },
  { mime: "audio/x-flac", kind: "audio", extension: "flac" },
  { mime: "audio/flac", kind: "audio", extension: "flac" },
  { mime: "audio/vnd.wave", kind: "audio", extension: "wav" },
  { mime: "audio/wav", kind: "audio", extension: "wav" },
  { mime: "audio/x-wav", kind: "audio", extension: "wav" },
];

const BY_MIME = new Map(ACCEPTED.map((type) => [type.mime, type]));

export function acceptedType(sniffedMime: string | undefined): AcceptedType | undefined {
  return sniffedMime === undefined ? undefined : BY_MIME.get(sniffedMime);
}

/** The kind a client's declared type suggests, to apply a size limit before any byte arrives; undefined when it says nothing useful. */
export function declaredKind(declaredMime: string | undefined): MediaKind | undefined {
  const top = declaredMime?.split("/")[0];
  return top === "image" || top === "video" || top === "audio" ? top : undefined;
}
