import { contentSniffing } from "./content-sniffing.properties";
import { cursor } from "./cursor.properties";
import type { PropertyGroup } from "./fuzz-parameters";
import { imageHeader } from "./image-header.properties";
import { byteRanges } from "./range.properties";
import { settingsParsing } from "./settings.properties";
import { signedUrl } from "./signed-url.properties";
import { uploadMetadata } from "./upload-metadata.properties";

/** Every property, for `npm test` (properties.test.ts) and `npm run fuzz` (fuzz.ts) alike. */
export const PROPERTY_GROUPS: readonly PropertyGroup[] = [contentSniffing, imageHeader, cursor, signedUrl, byteRanges, uploadMetadata, settingsParsing];
