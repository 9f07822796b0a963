import type http from "node:http";
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

/**
 * Streams the `file` field of a multipart/form-data request to `consume` without
 * buffering it; at most one file and a few small text fields are accepted. Resolves with
 * what `consume` returns once the whole request has been read.
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
        limits: { files: 1, fields: 10, fieldSize: MAX_FIELD_BYTES, fileSize: maxFileBytes, parts: 12 },
      });
    } catch {
      reject(new BadRequestError("Send the file as multipart/form-data in a field named file.", "invalid_multipart"));
      return;
    }
    const fields: Record<string, string> = {};
    let result: Promise<T> | undefined;
    let settled = false;
    const fail = (error: unknown) => {
      if (settled) return;
      settled = true;
      req.unpipe(parser);
      req.resume();
      reject(error);
    };

    parser.on("field", (name, value) => {
      fields[name] = value;
    });
    parser.on("file", (name, stream, info) => {
      if (name !== "file" || result) {
        stream.resume();
        return;
      }
      stream.on("limit", () => stream.destroy(new PayloadTooLargeError("The file is larger than the largest upload allowed.")));
      result = consume({ stream, filename: info.filename, mimeType: info.mimeType, fields: { ...fields } });
      result.catch(fail);
    });
    parser.on("error", fail);
    parser.on("partsLimit", () => fail(new BadRequestError("Too many parts in this form.", "invalid_multipart")));
    parser.on("close", () => {
      if (settled) return;
      if (!result) {
        fail(new BadRequestError("No file was sent: use a multipart/form-data field named file.", "missing_file"));
        return;
      }
      result.then(
        (value) => {
          settled = true;
          resolve(value);
        },
        fail,
      );
    });
    req.pipe(parser);
  });
}
