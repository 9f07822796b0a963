/** Object keys, laid out by media id: media/<id>/original.<ext>, media/<id>/<variant>.<ext>. */

const SAFE_ID = /^[A-Za-z0-9_-]{10,40}$/;
const SAFE_NAME = /^[a-z0-9][a-z0-9-]{0,31}$/;
const SAFE_EXTENSION = /^[a-z0-9]{1,5}$/;

function checked(value: string, pattern: RegExp, what: string): string {
  if (!pattern.test(value)) throw new Error(`invalid ${what} for an object key: ${JSON.stringify(value)}`);
  return value;
}

export function mediaPrefix(mediaId: string): string {
  return `media/${checked(mediaId, SAFE_ID, "media id")}/`;
}

export function originalKey(mediaId: string, extension: string): string {
  return `${mediaPrefix(mediaId)}original.${checked(extension, SAFE_EXTENSION, "extension")}`;
}

export function variantKey(mediaId: string, variant: string, extension: string): string {
  return `${mediaPrefix(mediaId)}${checked(variant, SAFE_NAME, "variant name")}.${checked(extension, SAFE_EXTENSION, "extension")}`;
}
