import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { thumbHashToDataURL } from "thumbhash";
import { ApiError, api, variant } from "../api";
import type { FeedSort, Media } from "../api";
import { onMediaEvent } from "../store";

const STATUS_TEXT: Record<string, string> = { uploaded: "Queued", processing: "Processing", ready: "Ready", failed: "Failed" };

export function placeholderUrl(media: Media): string | undefined {
  if (!media.placeholder) return undefined;
  try {
    const bytes = Uint8Array.from(atob(media.placeholder), (char) => char.charCodeAt(0));
    return thumbHashToDataURL(bytes);
  } catch {
    return undefined;
  }
}

export function MediaGrid({ scope, title }: { scope: "mine" | "public"; title: string }) {
  const [sort, setSort] = useState<FeedSort>("newest");
  const [items, setItems] = useState<Media[]>([]);
  const [cursor, setCursor] = useState<string | null | undefined>(undefined);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | undefined>();
  const sentinel = useRef<HTMLDivElement>(null);
  const state = useRef({ cursor, loading, sort });
  state.current = { cursor, loading, sort };

  async function loadMore() {
    const { cursor: current, loading: busy, sort: order } = state.current;
    if (busy || current === null) return;
    setLoading(true);
    state.current.loading = true;
    try {
      const page = await api.list(scope, current, order);
      // A page asked for before the order changed is not shown in the new order.
      if (state.current.sort !== order) return;
      setItems((existing) => [...existing, ...page.items.filter((item) => !existing.some((seen) => seen.id === item.id))]);
      setCursor(page.nextCursor);
      setError(undefined);
    } catch (caught) {
      setError(caught instanceof ApiError ? caught.message : "The list could not be loaded.");
    } finally {
      setLoading(false);
    }
  }

  useEffect(() => {
    setItems([]);
    setCursor(undefined);
    state.current = { cursor: undefined, loading: false, sort };
    void loadMore();
  }, [scope, sort]);

  // Infinite scroll: the next page loads when the end of the grid comes into view.
  useEffect(() => {
    const target = sentinel.current;
    if (!target) return undefined;
    const observer = new IntersectionObserver((entries) => {
      if (entries.some((entry) => entry.isIntersecting)) void loadMore();
    }, { rootMargin: "400px" });
    observer.observe(target);
    return () => observer.disconnect();
  }, [scope, items.length]);

  // Status badges follow processing live.
  useEffect(
    () =>
      onMediaEvent((event) => {
        setItems((current) =>
          current.map((item) => {
            if (event.type === "ready" && event.media.id === item.id) return event.media;
            if (event.type === "failed" && event.mediaId === item.id) return { ...item, status: "failed", reason: event.reason };
            if (event.type === "progress" && event.mediaId === item.id && item.status !== "ready")
              return { ...item, status: "processing", progress: { stage: event.stage, percent: event.percent } };
            return item;
          }),
        );
      }),
    [],
  );

  return (
    <section class="panel" aria-labelledby="page-title">
      <h1 id="page-title" tabIndex={-1}>{title}</h1>
      {scope === "public" && (
        <fieldset class="feed-sort">
          <legend>Show</legend>
          {(["newest", "popular"] as const).map((order) => (
            <label key={order}>
              <input type="radio" name="feed-sort" value={order} checked={sort === order} onChange={() => setSort(order)} />
              {order === "newest" ? "Newest" : "Popular"}
            </label>
          ))}
        </fieldset>
      )}
      {items.length === 0 && cursor === null && !error && (
        <p class="empty">{scope === "mine" ? <>Nothing here yet. <a href="#/upload">Upload something</a>.</> : "No public media yet."}</p>
      )}
      <ul class="grid" aria-busy={loading}>
        {items.map((item) => (
          <GridItem key={item.id} media={item} />
        ))}
      </ul>
      {error && (
        <p class="error" role="alert">
          {error} <button type="button" onClick={() => void loadMore()}>Try again</button>
        </p>
      )}
      <div ref={sentinel} class="sentinel" aria-hidden="true" />
      {loading && <p class="loading" role="status">Loading…</p>}
    </section>
  );
}

function GridItem({ media }: { media: Media }) {
  const thumb = variant(media, "thumb", "poster", "cover");
  const placeholder = useMemo(() => placeholderUrl(media), [media.placeholder]);
  const [loaded, setLoaded] = useState(false);
  const width = thumb?.width ?? media.width ?? 4;
  const height = thumb?.height ?? media.height ?? 3;
  const name = media.title || "Untitled";
  return (
    <li class="grid-item">
      <a href={`#/media/${media.id}`} class="grid-link">
        <span class={`grid-frame grid-frame--${media.kind}`}>
          {placeholder && !loaded && <img class="placeholder" src={placeholder} alt="" width={width} height={height} />}
          {thumb ? (
            <img
              class={loaded ? "thumb thumb--loaded" : "thumb"}
              src={thumb.url}
              alt=""
              width={width}
              height={height}
              loading="lazy"
              decoding="async"
              onLoad={() => setLoaded(true)}
            />
          ) : (
            <span class="grid-kind">{media.kind}</span>
          )}
          {media.status !== "ready" && (
            <span class={`badge badge--${media.status}`}>
              {STATUS_TEXT[media.status]}
              {media.status === "processing" && media.progress ? ` ${Math.round(media.progress.percent)} %` : ""}
            </span>
          )}
          {media.kind !== "image" && <span class="kind-badge">{media.kind === "video" ? "▶ video" : "♪ audio"}</span>}
        </span>
        <span class="grid-title">{name}</span>
      </a>
      {media.owner.username && <span class="grid-owner">by {media.owner.username}</span>}
    </li>
  );
}
