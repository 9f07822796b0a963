import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { ApiError, api, reasonText, variant } from "../api";
import type { Media, Visibility } from "../api";
import { navigate, onMediaEvent, session, useStore } from "../store";
import { Field, fieldSentence } from "./Field";
import { placeholderUrl } from "./Grid";
import { Waveform } from "./Waveform";

function videoSource(media: Media) {
  // The 720p file only where the window can show it; phones and small windows get 360p.
  const large = window.innerWidth * (window.devicePixelRatio || 1) > 900;
  return large ? variant(media, "720p", "360p") : variant(media, "360p", "720p");
}

export function Viewer({ id }: { id: string }) {
  const user = useStore(session);
  const [media, setMedia] = useState<Media | undefined>();
  const [error, setError] = useState<string | undefined>();

  useEffect(() => {
    setMedia(undefined);
    setError(undefined);
    api.media(id).then(
      ({ media: found }) => setMedia(found),
      (caught: unknown) =>
        setError(caught instanceof ApiError && (caught.status === 404 || caught.status === 403) ? "not_found" : caught instanceof Error ? caught.message : "error"),
    );
  }, [id, user?.id]);

  useEffect(
    () =>
      onMediaEvent((event) => {
        if (event.type === "ready" && event.media.id === id) setMedia(event.media);
        if (event.type === "failed" && event.mediaId === id) setMedia((current) => current && { ...current, status: "failed", reason: event.reason });
        if (event.type === "progress" && event.mediaId === id)
          setMedia((current) => current && current.status !== "ready" ? { ...current, status: "processing", progress: { stage: event.stage, percent: event.percent } } : current);
      }),
    [id],
  );

  if (error === "not_found")
    return (
      <section class="panel narrow">
        <h1 id="page-title" tabIndex={-1}>Not found</h1>
        <p>This item does not exist, or it is private.</p>
        <p><a href="#/">Go to the public feed</a></p>
      </section>
    );
  if (error) return <section class="panel"><p class="error" role="alert">{error}</p></section>;
  if (!media) return <section class="panel"><p role="status">Loading…</p></section>;

  const mine = user && (user.id === media.owner.id || user.role === "admin");
  return (
    <article class="panel viewer" aria-labelledby="page-title">
      <Player media={media} />
      <div class="viewer-info">
        <h1 id="page-title" tabIndex={-1}>{media.title || "Untitled"}</h1>
        <p class="meta">
          {media.owner.username ? <>by <strong>{media.owner.username}</strong> · </> : null}
          <time dateTime={media.createdAt}>{new Date(media.createdAt).toLocaleString()}</time>
          {mine && <> · <span class={`badge badge--inline badge--${media.visibility}`}>{media.visibility}</span></>}
        </p>
        {media.description && <p class="description">{media.description}</p>}
        {mine && <Editor media={media} onSaved={setMedia} />}
      </div>
    </article>
  );
}

function Player({ media }: { media: Media }) {
  const [audio, setAudio] = useState<HTMLAudioElement | null>(null);
  const dialog = useRef<HTMLDialogElement>(null);
  const placeholder = useMemo(() => placeholderUrl(media), [media.placeholder]);
  const source = useMemo(() => (media.kind === "video" ? videoSource(media) : undefined), [media]);

  if (media.status !== "ready") {
    return (
      <div class="player player--pending">
        {media.status === "failed" ? (
          <p class="error">{reasonText(media.reason)}</p>
        ) : (
          <>
            <p role="status">{media.progress ? `Processing: ${media.progress.stage}, ${Math.round(media.progress.percent)} %` : "Waiting to be processed…"}</p>
            <progress aria-label="Processing progress" max={100} value={media.progress?.percent ?? 0} />
          </>
        )}
      </div>
    );
  }

  if (media.kind === "image") {
    const display = variant(media, "display", "display-jpeg", "thumb");
    const full = variant(media, "display", "display-jpeg");
    if (!display) return <p class="error">This image has no viewable version.</p>;
    return (
      <div class="player player--image">
        <button type="button" class="image-button" onClick={() => dialog.current?.showModal()} aria-label="Show full size">
          <img src={display.url} alt={media.title ?? ""} width={display.width ?? media.width ?? undefined} height={display.height ?? media.height ?? undefined}
            class={placeholder ? "has-placeholder" : undefined} />
        </button>
        <dialog ref={dialog} class="lightbox" aria-label="Full size image" onClick={(event) => event.target === event.currentTarget && dialog.current?.close()}>
          <form method="dialog"><button class="close" type="submit" aria-label="Close full size view">✕</button></form>
          <img src={(full ?? display).url} alt={media.title ?? ""} width={full?.width ?? undefined} height={full?.height ?? undefined} />
        </dialog>
      </div>
    );
  }

  if (media.kind === "video") {
    const poster = variant(media, "poster");
    if (!source) return <p class="error">This video has no playable version.</p>;
    return (
      <div class="player player--video">
        <video controls preload="metadata" poster={poster?.url} width={source.width ?? undefined} height={source.height ?? undefined} playsInline>
          <source src={source.url} type={source.mime} />
          Your browser cannot play this video.
        </video>
      </div>
    );
  }

  const track = variant(media, "audio");
  const waveform = variant(media, "waveform");
  const cover = variant(media, "cover");
  return (
    <div class="player player--audio">
      {cover && <img class="cover" src={cover.url} alt="" width={cover.width ?? undefined} height={cover.height ?? undefined} />}
      {waveform && <Waveform url={waveform.url} audio={audio} />}
      {track ? <audio ref={setAudio} controls preload="metadata" src={track.url} /> : <p class="error">This recording has no playable version.</p>}
    </div>
  );
}

function Editor({ media, onSaved }: { media: Media; onSaved: (media: Media) => void }) {
  const [title, setTitle] = useState(media.title ?? "");
  const [description, setDescription] = useState(media.description ?? "");
  const [visibility, setVisibility] = useState<Visibility>(media.visibility);
  const [fields, setFields] = useState<Record<string, string>>({});
  const [message, setMessage] = useState<{ text: string; error?: boolean } | undefined>();
  const [confirming, setConfirming] = useState(false);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    setTitle(media.title ?? "");
    setDescription(media.description ?? "");
    setVisibility(media.visibility);
  }, [media.id]);

  async function save(event: Event) {
    event.preventDefault();
    setBusy(true);
    setFields({});
    setMessage(undefined);
    try {
      const { media: saved } = await api.update(media.id, { title, description, visibility });
      onSaved(saved);
      setMessage({ text: "Saved." });
    } catch (error) {
      if (error instanceof ApiError) {
        setFields(error.fields);
        setMessage({ text: error.message, error: true });
      } else setMessage({ text: "Saving failed.", error: true });
    } finally {
      setBusy(false);
    }
  }

  async function remove() {
    setBusy(true);
    try {
      await api.remove(media.id);
      navigate("/library");
    } catch (error) {
      setMessage({ text: error instanceof Error ? error.message : "Deleting failed.", error: true });
      setBusy(false);
    }
  }

  async function copyLink() {
    const link = `${location.origin}/#/media/${media.id}`;
    try {
      await navigator.clipboard.writeText(link);
      setMessage({ text: "Link copied." });
    } catch {
      setMessage({ text: `Copy this link: ${link}` });
    }
  }

  return (
    <div class="editor">
      <form onSubmit={save}>
        <h2>Edit</h2>
        <Field id="edit-title" label="Title" value={title} onInput={setTitle} maxLength={200} error={fieldSentence("The title", fields.title)} />
        <Field id="edit-description" label="Description" value={description} onInput={setDescription} multiline maxLength={5000}
          error={fieldSentence("The description", fields.description)} />
        <fieldset class="visibility">
          <legend>Who can see it</legend>
          {(["private", "unlisted", "public"] as const).map((value) => (
            <label key={value} class="radio">
              <input type="radio" name="visibility" value={value} checked={visibility === value} onChange={() => setVisibility(value)} />
              {value === "private" ? "Private: only me" : value === "unlisted" ? "Unlisted: anyone with the link" : "Public: in the public feed"}
            </label>
          ))}
          {fields.visibility && <p class="error">{fieldSentence("The visibility", fields.visibility)}</p>}
        </fieldset>
        <div class="actions">
          <button type="submit" class="primary" disabled={busy}>Save</button>
          {media.visibility !== "private" && (
            <button type="button" onClick={() => void copyLink()}>Copy link</button>
          )}
        </div>
        {message && <p class={message.error ? "error" : "success"} role={message.error ? "alert" : "status"}>{message.text}</p>}
      </form>
      <div class="danger-zone">
        {confirming ? (
          <div role="group" aria-label="Confirm deletion">
            <p>Delete “{media.title || "Untitled"}” for good? This cannot be undone.</p>
            <button type="button" class="danger" disabled={busy} onClick={() => void remove()}>Yes, delete it</button>{" "}
            <button type="button" onClick={() => setConfirming(false)}>Keep it</button>
          </div>
        ) : (
          <button type="button" class="danger" onClick={() => setConfirming(true)}>Delete…</button>
        )}
      </div>
    </div>
  );
}
