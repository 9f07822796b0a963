import { ulidParam } from "../lib/service-contracts";

// The media service's parameter schemas (fastest-validator), shared by its actions.

export const mediaId = { type: "string", pattern: /^[A-Za-z0-9_-]{21}$/, messages: { stringPattern: "is not a media id" } };
const userId = ulidParam("user");
/** Names a worker's claim of an item (lib/jobs/job-state.ts); optional, so that a worker of an older release still claims. */
export const claimToken = { type: "string", min: 1, max: 64, pattern: /^[A-Za-z0-9-]+$/, optional: true };
// Titles are shown to other people: no control characters (tabs and line breaks included).
export const title = { type: "string", trim: true, max: 200, pattern: /^\P{Cc}*$/u, messages: { stringPattern: "may not contain control characters" } };
export const description = {
  type: "string",
  trim: true,
  max: 5000,
  pattern: /^(?:\P{Cc}|[\t\n\r])*$/u,
  messages: { stringPattern: "may not contain control characters other than tabs and line breaks" },
};
export const visibility = { type: "enum", values: ["private", "unlisted", "public"] };

/** A stored original, recorded by the upload pipeline. */
export const newMediaParams = {
  $$strict: true,
  id: mediaId,
  ownerId: userId,
  kind: { type: "enum", values: ["image", "video", "audio"] },
  mime: { type: "string", min: 3, max: 100, pattern: /^[a-z0-9][a-z0-9.+-]*\/[a-z0-9][a-z0-9.+-]*$/ },
  bytes: { type: "number", integer: true, positive: true, max: Number.MAX_SAFE_INTEGER },
  sha256: { type: "string", pattern: /^[0-9a-fA-F]{64}$/ },
  originalKey: { type: "string", min: 1, max: 255 },
  title: { ...title, optional: true },
  // What the client said: recorded (cut to the column sizes), never trusted, so not refused for being long.
  originalName: { type: "string", max: 4096, optional: true },
  declaredMime: { type: "string", max: 1024, optional: true },
};

/** What processing found out about an item, recorded as it becomes ready. */
export const finishParams = {
  $$strict: true,
  id: mediaId,
  width: { type: "number", integer: true, min: 0, optional: true, nullable: true },
  height: { type: "number", integer: true, min: 0, optional: true, nullable: true },
  durationSeconds: { type: "number", min: 0, optional: true, nullable: true },
  placeholder: { type: "string", max: 100, optional: true, nullable: true },
  title: { type: "string", max: 1000, optional: true, nullable: true },
};

/** The variants a job stored for an item. */
export const storedVariantsParams = {
  $$strict: true,
  id: mediaId,
  variants: {
    type: "array",
    min: 1,
    max: 16,
    items: {
      type: "object",
      strict: true,
      props: {
        name: { type: "string", pattern: /^[a-z0-9][a-z0-9-]{0,31}$/ },
        objectKey: { type: "string", min: 1, max: 255 },
        mime: { type: "string", min: 3, max: 100 },
        width: { type: "number", integer: true, min: 0, optional: true, nullable: true },
        height: { type: "number", integer: true, min: 0, optional: true, nullable: true },
        durationSeconds: { type: "number", min: 0, optional: true, nullable: true },
        bytes: { type: "number", integer: true, min: 0 },
      },
    },
  },
};
