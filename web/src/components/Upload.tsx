import { useEffect, useRef, useState } from "preact/hooks";
import { Upload as TusUpload } from "tus-js-client";
import type { DetailedError } from "tus-js-client";
import { api, csrfToken, errorFrom, formatBytes, reasonText, variant } from "../api";
import type { Media } from "../api";
import { latestEvent, onMediaEvent } from "../store";
import type { MediaEvent } from "../store";

type Phase = "uploading" | "paused" | "offline" | "processing" | "ready" | "failed";

interface Row {
  key: string;
  file: File;
  phase: Phase;
  sent: number;
  mediaId?: string;
  stage?: string;
  percent: number;
  message?: string;
  thumb?: { url: string; width: number | null; height: number | null };
  upload?: TusUpload;
}

const STAGES: Record<string, string> = {
  queued: "Waiting to be processed",
  processing: "Processing",
  storing: "Saving",
  ready: "Ready",
  failed: "Failed",
};

let nextKey = 0;

function thumbOf(media: Media): Row["thumb"] {
  const found = variant(media, "thumb", "poster", "cover");
  return found ? { url: found.url, width: found.width, height: found.height } : undefined;
}

export function UploadPage() {
  const [rows, setRows] = useState<Row[]>([]);
  const [dragging, setDragging] = useState(false);
  const rowsRef = useRef<Row[]>(rows);
  rowsRef.current = rows;
  const picker = useRef<HTMLInputElement>(null);

  function patch(key: string, changes: Partial<Row>) {
    setRows((current) => current.map((row) => (row.key === key ? { ...row, ...changes } : row)));
  }

  function applyEvent(row: Row, event: MediaEvent): Partial<Row> | undefined {
    if (event.type === "ready" && event.media.id === row.mediaId)
      return { phase: "ready", percent: 100, stage: "ready", thumb: thumbOf(event.media) };
    if (event.type === "failed" && event.mediaId === row.mediaId) return { phase: "failed", message: reasonText(event.reason) };
    if (event.type === "progress" && event.mediaId === row.mediaId && row.phase === "processing")
      return { stage: event.stage, percent: event.percent };
    return undefined;
  }

  // Live processing progress for every row whose media id is known.
  useEffect(
    () =>
      onMediaEvent((event) => {
        setRows((current) =>
          current.map((row) => {
            const changes = applyEvent(row, event);
            return changes ? { ...row, ...changes } : row;
          }),
        );
      }),
    [],
  );

  // When the browser goes offline, stop the uploads under way at once (a request in flight may otherwise
  // hang until the connection times out) and say so; carry on as soon as the browser is back online.
  useEffect(() => {
    const stopAll = () => {
      for (const row of rowsRef.current)
        if (row.phase === "uploading") {
          void row.upload?.abort();
          patch(row.key, { phase: "offline", message: undefined });
        }
    };
    const resumeAll = () => {
      for (const row of rowsRef.current) if (row.phase === "offline") start(row);
    };
    window.addEventListener("offline", stopAll);
    window.addEventListener("online", resumeAll);
    return () => {
      window.removeEventListener("offline", stopAll);
      window.removeEventListener("online", resumeAll);
    };
  }, []);

  async function processed(key: string, mediaId: string) {
    patch(key, { mediaId, phase: "processing", stage: "queued", percent: 0 });
    const seen = latestEvent(mediaId);
    try {
      const { media } = await api.media(mediaId);
      if (media.status === "ready") patch(key, { phase: "ready", percent: 100, stage: "ready", thumb: thumbOf(media) });
      else if (media.status === "failed") patch(key, { phase: "failed", message: reasonText(media.reason) });
      else if (media.progress) patch(key, { stage: media.progress.stage, percent: media.progress.percent });
    } catch {
      // the socket will tell
    }
    if (seen) {
      const row = rowsRef.current.find((item) => item.key === key);
      const changes = row && applyEvent({ ...row, mediaId, phase: "processing" }, seen);
      if (changes) patch(key, changes);
    }
  }

  function start(row: Row) {
    let mediaId: string | undefined;
    const upload =
      row.upload ??
      new TusUpload(row.file, {
        endpoint: "/api/uploads",
        retryDelays: [0, 1000, 3000, 5000, 10000, 20000],
        chunkSize: 8 * 1024 * 1024,
        removeFingerprintOnSuccess: true,
        storeFingerprintForResuming: true,
        headers: { "X-CSRF-Token": csrfToken() ?? "" },
        metadata: {
          filename: row.file.name,
          filetype: row.file.type || "application/octet-stream",
          title: row.file.name.replace(/\.[^.]+$/, "").slice(0, 200),
        },
        onProgress(sent) {
          patch(row.key, { sent });
        },
        onAfterResponse(_request, response) {
          const id = response.getHeader("Shoal-Media-Id");
          if (id) mediaId = id;
        },
        onShouldRetry(error, _attempt, options) {
          const status = (error as DetailedError).originalResponse?.getStatus() ?? 0;
          if (status >= 400 && status < 500 && status !== 409 && status !== 423 && status !== 429) return false;
          if (!navigator.onLine) {
            patch(row.key, { phase: "offline" });
            return false;
          }
          return options.retryDelays != null;
        },
        onError(error) {
          if (!navigator.onLine) {
            patch(row.key, { phase: "offline", message: undefined });
            return;
          }
          const response = (error as DetailedError).originalResponse;
          const message = response
            ? errorFrom(response.getStatus(), response.getBody() ?? "", response.getHeader("Retry-After")).message
            : "The upload failed. Check your connection and try again.";
          patch(row.key, { phase: "failed", message });
        },
        onSuccess() {
          const uploadId = upload.url?.split("/").pop();
          if (mediaId) void processed(row.key, mediaId);
          else if (uploadId)
            api.uploadResult(uploadId).then(
              ({ media }) => processed(row.key, media.id),
              (error: Error) => patch(row.key, { phase: "failed", message: error.message }),
            );
        },
      });
    patch(row.key, { upload, phase: "uploading", message: undefined });
    // A file uploaded before (a dropped connection, a reloaded page) carries on where it stopped.
    upload.findPreviousUploads().then(
      (previous) => {
        const last = previous[0];
        if (last && !row.upload) upload.resumeFromPreviousUpload(last);
        upload.start();
      },
      () => upload.start(),
    );
  }

  function add(files: FileList | File[]) {
    const added = [...files].map((file) => ({ key: `f${nextKey++}`, file, phase: "uploading" as Phase, sent: 0, percent: 0 }));
    setRows((current) => [...added, ...current]);
    for (const row of added) start(row);
  }

  function pause(row: Row) {
    void row.upload?.abort();
    patch(row.key, { phase: "paused" });
  }

  function onDrop(event: DragEvent) {
    event.preventDefault();
    setDragging(false);
    if (event.dataTransfer?.files.length) add(event.dataTransfer.files);
  }

  return (
    <section class="panel" aria-labelledby="page-title">
      <h1 id="page-title" tabIndex={-1}>Upload</h1>
      <div
        class={`dropzone${dragging ? " dropzone--active" : ""}`}
        onDragOver={(event) => {
          event.preventDefault();
          setDragging(true);
        }}
        onDragLeave={() => setDragging(false)}
        onDrop={onDrop}
      >
        <p>Drop images, videos or audio files here, or</p>
        <button type="button" class="primary" onClick={() => picker.current?.click()}>
          Choose files…
        </button>
        <input
          ref={picker}
          id="file-picker"
          class="visually-hidden"
          type="file"
          multiple
          accept="image/*,video/*,audio/*"
          aria-label="Choose files to upload"
          onChange={(event) => {
            const input = event.currentTarget;
            if (input.files?.length) add(input.files);
            input.value = "";
          }}
        />
        <p class="hint">Uploads resume by themselves after a dropped connection. After reloading the page, choose the same file again to carry on where it stopped.</p>
      </div>
      {rows.length > 0 && (
        <ul class="upload-list" aria-label="Uploads">
          {rows.map((row) => (
            <UploadRow key={row.key} row={row} onPause={() => pause(row)} onResume={() => start(row)} />
          ))}
        </ul>
      )}
    </section>
  );
}

function UploadRow({ row, onPause, onResume }: { row: Row; onPause: () => void; onResume: () => void }) {
  const uploading = row.phase === "uploading" || row.phase === "paused" || row.phase === "offline";
  const label = `${row.file.name}: ${uploading ? "upload" : "processing"} progress`;
  return (
    <li class={`upload-row upload-row--${row.phase}`}>
      <div class="upload-thumb">
        {row.thumb ? (
          <img src={row.thumb.url} alt="" width={row.thumb.width ?? 160} height={row.thumb.height ?? 160} loading="lazy" />
        ) : (
          <span class="upload-kind" aria-hidden="true">{row.file.type.split("/")[0] || "file"}</span>
        )}
      </div>
      <div class="upload-main">
        <p class="upload-name">
          {row.mediaId && row.phase === "ready" ? <a href={`#/media/${row.mediaId}`}>{row.file.name}</a> : row.file.name}
          <span class="upload-size"> · {formatBytes(row.file.size)}</span>
        </p>
        {row.phase !== "failed" && row.phase !== "ready" && (
          <progress
            aria-label={label}
            max={uploading ? row.file.size || 1 : 100}
            value={uploading ? row.sent : row.percent}
          />
        )}
        <p class="upload-status" role="status">
          {row.phase === "uploading" && `Uploading: ${Math.floor((row.sent / (row.file.size || 1)) * 100)} %`}
          {row.phase === "paused" && `Paused at ${Math.floor((row.sent / (row.file.size || 1)) * 100)} %`}
          {row.phase === "offline" && "Offline: the upload will carry on when the connection is back."}
          {row.phase === "processing" && `${STAGES[row.stage ?? "queued"] ?? row.stage}: ${Math.round(row.percent)} %`}
          {row.phase === "ready" && "Ready"}
          {row.phase === "failed" && <span class="error">{row.message}</span>}
        </p>
      </div>
      <div class="upload-actions">
        {row.phase === "uploading" && (
          <button type="button" onClick={onPause} aria-label={`Pause ${row.file.name}`}>Pause</button>
        )}
        {(row.phase === "paused" || row.phase === "offline") && (
          <button type="button" onClick={onResume} aria-label={`Resume ${row.file.name}`}>Resume</button>
        )}
      </div>
    </li>
  );
}
