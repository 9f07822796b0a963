import { AppError } from "../../lib/errors";
import { checkedUploadMetadata } from "../../lib/uploads/upload-metadata";

const b64 = (value: string) => Buffer.from(value).toString("base64");

function refusal(header: string): { status: number; code: string; fields: unknown } {
  try {
    checkedUploadMetadata(header);
  } catch (error) {
    if (error instanceof AppError) return { status: error.status, code: error.code, fields: error.fields };
    throw error;
  }
  throw new Error("accepted");
}

describe("Upload-Metadata as the tus handler reads it", () => {
  test("decodes each value, a key without one as empty, and keeps keys it does not know", () => {
    expect(checkedUploadMetadata(`filename ${b64("été.jpg")},title ${b64("Sea")},relativePath,name ${b64("x")}`)).toEqual({
      filename: "été.jpg",
      title: "Sea",
      relativePath: "",
      name: "x",
    });
    expect(checkedUploadMetadata(undefined)).toEqual({});
  });

  test("__proto__ and constructor are refused (422, named), as in every request's fields; other keys an object has are plain keys", () => {
    expect(refusal(`__proto__ ${b64("p")},constructor ${b64("c")},title ${b64("t")}`)).toEqual({
      status: 422,
      code: "validation_failed",
      // A literal `__proto__:` would set the prototype instead of naming the field.
      fields: Object.fromEntries([
        ["__proto__", "is not allowed"],
        ["constructor", "is not allowed"],
      ]),
    });
    const metadata = checkedUploadMetadata(`toString ${b64("t")},hasOwnProperty ${b64("h")}`);
    expect(Object.getPrototypeOf(metadata)).toBe(Object.prototype);
    expect(metadata).toEqual({ toString: "t", hasOwnProperty: "h" });
  });

  test("a key given twice, a pair with two spaces or a key with a non-ASCII character is malformed (400)", () => {
    expect(refusal(`title ${b64("a")},title ${b64("b")}`)).toEqual({ status: 400, code: "invalid_metadata", fields: { title: "is given more than once" } });
    expect(refusal(`title  ${b64("a")}`)).toMatchObject({ status: 400, fields: { "Upload-Metadata": expect.any(String) } });
    expect(refusal(`tïtle ${b64("a")}`)).toMatchObject({ status: 400, fields: { "Upload-Metadata": expect.any(String) } });
  });

  test("lengths count characters, not UTF-16 units or bytes", () => {
    expect(checkedUploadMetadata(`title ${b64("😀".repeat(200))}`).title).toHaveLength(400);
    expect(refusal(`title ${b64("😀".repeat(201))}`)).toEqual({ status: 422, code: "validation_failed", fields: { title: "must be at most 200 characters" } });
  });

  test("control characters are refused in the title, file name and type (C0, DEL and C1), and every bad field is named", () => {
    expect(refusal(`title ${b64("a\u007fb")},filename ${b64("a\u0085b")},filetype ${b64("image/png")}`)).toEqual({
      status: 422,
      code: "validation_failed",
      fields: { title: "must not contain control characters", filename: "must not contain control characters" },
    });
  });
});
