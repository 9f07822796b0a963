import type http from "node:http";
import { PassThrough } from "node:stream";
import type { Readable } from "node:stream";
import busboy from "busboy";
import { BadRequestError, PayloadTooLargeError } from "../errors";

export interface MultipartFile {
  readonly stream: Readable;
  readonly filename: string | undefined;
  readonly mimeType: string | undefined;
  /** Text fields that came before the file (send `title` first). */
  readonly fields: Readonly<Record<string, string>>;
}

const MAX_FIELD_BYTES = 10_000;

function invalidForm(message = "The multipart/form-data body is malformed or incomplete."): BadRequestError {
  return new BadRequestError(message, "invalid_multipart");
}

/**
 * Streams the `file` field of a multipart/form-data request to `consume` without
 * buffering it; at most one file and a few small text fields are accepted. Resolves with
 * what `consume` returns once the whole request has been read.
 *
 * The file's stream ends only once the whole form has been read without fault, so that a body
 * that is malformed or cut short anywhere fails the file (400 invalid_multipart) instead of
 * letting it be stored. A refusal is answered only after `consume` has settled, so that whatever
 * it began to store has been cleaned up by then.
 */
export function receiveMultipartFile<T>(
  req: http.IncomingMessage,
  maxFileBytes: number,
  consume: (file: MultipartFile) => Promise<T>,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let parser: busboy.Busboy;
    try {
      parser = busboy({
        headers: req.headers,
        // File names are UTF-8 in what browsers and curl send; busboy's default is latin1.
        defParamCharset: "utf8",
        limits: { files: 1, fields: 10, fieldSize: MAX_FIELD_BYTES, fileSize: maxFileBytes, parts: 12 },
      });
    } catch {
      reject(invalidForm("Send the file as multipart/form-data in a field named file."));
      return;
    }
    const fields: Record<string, string> = {};
    let file: PassThrough | undefined;
    let consumed: Promise<T> | undefined;
    let refused = false;

    const refuse = (error: unknown) => {
      if (refused) return;
      refused = true;
      req.unpipe(parser);
      req.resume();
      if (!file || !consumed) {
        reject(error);
        return;
      }
      file.destroy(error instanceof Error ? error : invalidForm());
      consumed.then(
        () => reject(error),
        () => reject(error),
      );
    };

    parser.on("field", (name, value) => {
      fields[name] = value;
    });
    parser.on("file", (name, stream, info) => {
      if (name !== "file" || file) {
        stream.resume();
        return;
      }
      const piped = new PassThrough();
      file = piped;
      stream.on("limit", () => refuse(new PayloadTooLargeError("The file is larger than the largest upload allowed.")));
      // busboy fails a file's stream only when the body around it is broken or cut short.
      stream.on("error", () => refuse(invalidForm()));
      stream.pipe(piped, { end: false });
      consumed = consume({ stream: piped, filename: info.filename, mimeType: info.mimeType, fields: { ...fields } });
      consumed.then(
        (value) => {
          if (!refused) resolve(value);
        },
        (error: unknown) => refuse(error),
      );
    });
    parser.on("error", () => refuse(invalidForm()));
    parser.on("partsLimit", () => refuse(invalidForm("Too many parts in this form.")));
    parser.on("finish", () => {
      if (refused) return;
      if (!file) refuse(new BadRequestError("No file was sent: use a multipart/form-data field named file.", "missing_file"));
      else file.end();
    });
    // A client that goes away mid-body: what was begun is cleaned up and the reservation given back.
    req.on("close", () => {
      if (!req.complete) refuse(invalidForm("The upload was cut off before the form was complete."));
    });
    req.pipe(parser);
  });
}
