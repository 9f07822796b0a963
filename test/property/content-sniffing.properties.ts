import fc from "fast-check";
import { acceptedType, declaredKind } from "../../lib/uploads/allowed-types";
import { sniffMime } from "../../lib/uploads/ingest";
import type { PropertyGroup } from "./fuzz-parameters";

/** What ingest reads to sniff a type. */
const SNIFF_BYTES = 4100;

const anyBytes = fc.uint8Array({ maxLength: SNIFF_BYTES }).map((bytes) => Buffer.from(bytes));

/** Markup and scripts that must never pass as media, whatever follows their first line. */
const textCarriers = fc.tuple(
  fc.constantFrom("<svg xmlns=\"http://www.w3.org/2000/svg\">", "<?xml version=\"1.0\"?>", "<!DOCTYPE html>", "<html>", "<script>", "<?php", "#!/bin/sh", "{\"a\":1}", ""),
  fc.string({ unit: "grapheme", maxLength: 2000 }),
);

const IMAGE_SIGNATURES: ReadonlyArray<readonly [string, Buffer]> = [
  ["image/jpeg", Buffer.from([0xff, 0xd8, 0xff])],
  ["image/gif", Buffer.from("GIF89a", "latin1")],
  ["image/gif", Buffer.from("GIF87a", "latin1")],
];

export const contentSniffing: PropertyGroup = {
  subject: "content sniffing and allowed types",
  properties: [
    {
      name: "sniffing any bytes gives a type name or nothing, and never fails",
      runs: 200,
      property: fc.asyncProperty(anyBytes, async (head) => {
        const mime = await sniffMime(head);
        return mime === undefined || /^[a-z]+\/[a-z0-9.+-]+$/.test(mime);
      }),
    },
    {
      name: "an accepted type is always media, of the kind its type names, stored under a fixed extension",
      property: fc.asyncProperty(fc.oneof(anyBytes, fc.string().map((text) => Buffer.from(text))), async (head) => {
        const type = acceptedType(await sniffMime(head));
        if (type === undefined) return true;
        return type.mime.startsWith(`${type.kind}/`) && /^[a-z0-9]{2,5}$/.test(type.extension);
      }),
    },
    {
      name: "markup, scripts and plain text are never accepted, whatever they say",
      runs: 200,
      property: fc.asyncProperty(textCarriers, async ([start, rest]) => {
        return acceptedType(await sniffMime(Buffer.from(`${start}\n${rest}`, "utf8"))) === undefined;
      }),
    },
    {
      name: "bytes behind a JPEG or GIF signature are taken for that image type, whatever follows",
      runs: 200,
      property: fc.asyncProperty(fc.constantFrom(...IMAGE_SIGNATURES), fc.uint8Array({ maxLength: 512 }), async ([mime, signature], tail) => {
        const type = acceptedType(await sniffMime(Buffer.concat([signature, tail])));
        return type?.mime === mime && type.kind === "image";
      }),
    },
    {
      name: "a type that is not on the list is never accepted",
      property: fc.property(fc.string(), (mime) => {
        const type = acceptedType(mime);
        return type === undefined || type.mime === mime;
      }),
    },
    {
      name: "the declared type suggests a kind only when its top-level type is image, video or audio",
      property: fc.property(fc.option(fc.oneof(fc.string(), fc.constantFrom("image/png", "video/mp4", "audio/ogg", "image", "text/html"))), (declared) => {
        const kind = declaredKind(declared ?? undefined);
        return kind === undefined ? !/^(image|video|audio)(\/|$)/.test(declared ?? "") : (declared ?? "").split("/")[0] === kind;
      }),
    },
  ],
};
